// The prism target: prism.v1.Prism/Generate over grpc-go, with route.model "openai/MODEL", so
// that Prism's OpenAI plugin streams from the fake vendor. Messages are encoded and decoded
// with protowire and passed through a codec of raw bytes: no generated Go code. A `text` event
// with non-empty text is a token; the end of the RPC with status OK is the end of the answer.
package main

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of proto/prism/v1/prism.proto.
const (
	generateRequestMessages = 1 // GenerateRequest.messages
	generateRequestRoute    = 9 // GenerateRequest.route
	messageRole             = 1 // Message.role
	messageParts            = 2 // Message.parts
	partText                = 1 // Part.text
	routeModel              = 2 // Route.model
	roleUser                = 1 // ROLE_USER
	generateEventText       = 2 // GenerateEvent.text (TextDelta)
	textDeltaText           = 1 // TextDelta.text
)

// rawCodec passes already-encoded protobuf bytes through grpc-go unchanged.
type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error) { return *v.(*[]byte), nil }
func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	*v.(*[]byte) = data
	return nil
}
func (rawCodec) Name() string { return "proto" }

type prism struct {
	conns   []*grpc.ClientConn
	next    atomic.Uint64
	request []byte
}

var generateStream = &grpc.StreamDesc{StreamName: "Generate", ServerStreams: true}

func newPrism(o options) (*prism, error) {
	count := o.connections
	if count < 1 {
		count = (o.concurrency + 127) / 128
	}
	p := &prism{request: generateRequest(o.prompt, "openai/"+o.model)}
	for i := 0; i < count; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		conn, err := grpc.DialContext(ctx, o.addr, grpc.WithInsecure(), grpc.WithBlock(),
			grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
		cancel()
		if err != nil {
			return nil, fmt.Errorf("cannot connect to prism-server at %s: %v", o.addr, err)
		}
		p.conns = append(p.conns, conn)
	}
	return p, nil
}

// generateRequest is GenerateRequest{messages: [{role: USER, parts: [{text}]}], route: {model}}.
func generateRequest(text, model string) []byte {
	var part, message, route, request []byte
	part = protowire.AppendTag(part, partText, protowire.BytesType)
	part = protowire.AppendString(part, text)
	message = protowire.AppendTag(message, messageRole, protowire.VarintType)
	message = protowire.AppendVarint(message, roleUser)
	message = protowire.AppendTag(message, messageParts, protowire.BytesType)
	message = protowire.AppendBytes(message, part)
	route = protowire.AppendTag(route, routeModel, protowire.BytesType)
	route = protowire.AppendString(route, model)
	request = protowire.AppendTag(request, generateRequestMessages, protowire.BytesType)
	request = protowire.AppendBytes(request, message)
	request = protowire.AppendTag(request, generateRequestRoute, protowire.BytesType)
	return protowire.AppendBytes(request, route)
}

func (p *prism) Open(ctx context.Context) (stream, error) {
	conn := p.conns[p.next.Add(1)%uint64(len(p.conns))]
	ctx, cancel := context.WithCancel(ctx)
	s, err := conn.NewStream(ctx, generateStream, "/prism.v1.Prism/Generate")
	if err == nil {
		err = s.SendMsg(&p.request)
	}
	if err == nil {
		err = s.CloseSend()
	}
	if err != nil {
		cancel()
		return nil, err
	}
	return &grpcStream{stream: s, cancel: cancel}, nil
}

type grpcStream struct {
	stream grpc.ClientStream
	cancel context.CancelFunc
}

func (g *grpcStream) Next() (event, error) {
	var message []byte
	if err := g.stream.RecvMsg(&message); err != nil {
		return other, err // io.EOF after status OK
	}
	text, err := eventText(message)
	if err != nil {
		return other, err
	}
	if text != "" {
		return token, nil
	}
	return other, nil
}

func (g *grpcStream) Close() { g.cancel() }

// eventText is the text of a GenerateEvent's TextDelta ("" for any other event).
func eventText(message []byte) (string, error) {
	text := ""
	for len(message) > 0 {
		number, kind, n := protowire.ConsumeTag(message)
		if n < 0 {
			return "", errors.New("bad GenerateEvent")
		}
		message = message[n:]
		if number == generateEventText && kind == protowire.BytesType {
			delta, n := protowire.ConsumeBytes(message)
			if n < 0 {
				return "", errors.New("bad GenerateEvent.text")
			}
			message = message[n:]
			for len(delta) > 0 {
				field, fieldKind, m := protowire.ConsumeTag(delta)
				if m < 0 {
					return "", errors.New("bad TextDelta")
				}
				delta = delta[m:]
				if field == textDeltaText && fieldKind == protowire.BytesType {
					value, m := protowire.ConsumeString(delta)
					if m < 0 {
						return "", errors.New("bad TextDelta.text")
					}
					text += value
					delta = delta[m:]
					continue
				}
				m = protowire.ConsumeFieldValue(field, fieldKind, delta)
				if m < 0 {
					return "", errors.New("bad TextDelta field")
				}
				delta = delta[m:]
			}
			continue
		}
		n = protowire.ConsumeFieldValue(number, kind, message)
		if n < 0 {
			return "", errors.New("bad GenerateEvent field")
		}
		message = message[n:]
	}
	return text, nil
}
