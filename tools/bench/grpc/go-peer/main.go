// The grpc-go benchmark peer (tools/bench/grpc/run.sh): grpc-go's own health server plus an
// interop-style grpc.testing.TestService/StreamingOutputCall, over h2c. Built offline in GOPATH
// mode against Debian's golang-google-grpc-dev. Usage: go-peer PORT.
//
// Debian ships no grpc-go interop package, so the TestService messages come from grpc-go's
// test/grpc_testing package: the same proto package (grpc.testing) and the same field numbers
// as proto/grpc/testing/, so the bytes on the wire are those of the interop service.
package main

import (
	"fmt"
	"net"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testpb "google.golang.org/grpc/test/grpc_testing"
)

// testService answers StreamingOutputCall as the interop spec says: one response per
// ResponseParameters entry, each with a payload of `size` zero bytes.
type testService struct {
	testpb.UnimplementedTestServiceServer
}

func (testService) StreamingOutputCall(req *testpb.StreamingOutputCallRequest, stream testpb.TestService_StreamingOutputCallServer) error {
	for _, params := range req.GetResponseParameters() {
		response := &testpb.StreamingOutputCallResponse{
			Payload: &testpb.Payload{Body: make([]byte, params.GetSize())},
		}
		if err := stream.Send(response); err != nil {
			return err
		}
	}
	return nil
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: go-peer PORT")
		os.Exit(2)
	}
	listener, err := net.Listen("tcp", "127.0.0.1:"+os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	server := grpc.NewServer()
	healthpb.RegisterHealthServer(server, health.NewServer())
	testpb.RegisterTestServiceServer(server, testService{})
	fmt.Printf("go-peer listening on %s (h2c)\n", listener.Addr())
	if err := server.Serve(listener); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
