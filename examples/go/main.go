// A Go client of Prism: sends an image and a question with Generate and prints the answer as it
// streams, then the usage. Built by build.sh (GOPATH mode, stubs generated from proto/ at build time).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"mime"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	prismv1 "prism/v1"
)

func main() {
	address := os.Getenv("PRISM_ADDRESS")
	if address == "" {
		address = "127.0.0.1:50051"
	}
	server := flag.String("server", address, "the server's HOST:PORT (default: PRISM_ADDRESS or 127.0.0.1:50051)")
	model := flag.String("model", "", "provider/model to ask (default: any capable provider)")
	timeout := flag.Duration("timeout", 2*time.Minute, "deadline of the whole call")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: prism-go-client [--server HOST:PORT] [--model provider/model] IMAGE QUESTION")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 2 {
		flag.Usage()
		os.Exit(2)
	}
	image, question := flag.Arg(0), flag.Arg(1)
	data, err := os.ReadFile(image)
	if err != nil {
		fail("cannot read %s: %v", image, err)
	}

	conn, err := grpc.Dial(*server, grpc.WithInsecure()) // plaintext h2c, as prism-server serves by default
	if err != nil {
		fail("cannot connect to %s: %v", *server, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if key := os.Getenv("PRISM_API_KEY"); key != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
	}

	request := &prismv1.GenerateRequest{
		Messages: []*prismv1.Message{{
			Role: prismv1.Role_ROLE_USER,
			Parts: []*prismv1.Part{
				// The server sniffs the bytes; the declared type is only a hint.
				{Kind: &prismv1.Part_Media{Media: &prismv1.Media{
					Data: data, MimeType: mime.TypeByExtension(filepath.Ext(image)), Name: filepath.Base(image)}}},
				{Kind: &prismv1.Part_Text{Text: question}},
			},
		}},
		Route: &prismv1.Route{Model: *model},
	}
	stream, err := prismv1.NewPrismClient(conn).Generate(ctx, request)
	if err != nil {
		failStatus(err)
	}
	for {
		event, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			failStatus(err)
		}
		switch e := event.Event.(type) {
		case *prismv1.GenerateEvent_Routed:
			fmt.Printf("routed: %s\n", e.Routed.Model) // "provider/model"
			for _, step := range e.Routed.Adaptations {
				fmt.Printf("adapted: %s\n", step)
			}
		case *prismv1.GenerateEvent_Text:
			fmt.Print(e.Text.Text) // printed as it arrives
		case *prismv1.GenerateEvent_Usage:
			u := e.Usage
			fmt.Printf("\nusage: %d input tokens, %d output tokens, $%.6f\n",
				u.InputTokens, u.OutputTokens, float64(u.CostUsdMicros)/1e6)
		case *prismv1.GenerateEvent_Finished:
			fmt.Printf("finished: %s\n", e.Finished.StopReason)
		}
	}
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "prism-go-client: "+format+"\n", args...)
	os.Exit(1)
}

// failStatus prints a gRPC error as its code and message, which name what was wrong.
func failStatus(err error) {
	s := status.Convert(err)
	fail("%s: %s", s.Code(), s.Message())
}
