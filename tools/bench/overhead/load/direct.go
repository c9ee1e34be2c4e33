// The direct target: what a client of the vendor does without a gateway. POST
// /v1/chat/completions with stream:true over keep-alive HTTP/1.1 (over TLS with --vendor-ca, as
// the vendors' Python SDKs do by default), then read the SSE `data:` frames: a chunk with
// non-empty delta content is a token, `data: [DONE]` is the end.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
)

type direct struct {
	url, key string
	body     []byte
	client   *http.Client
}

func newDirect(o options) *direct {
	body, _ := json.Marshal(map[string]interface{}{
		"model": o.model,
		"messages": []interface{}{map[string]interface{}{"role": "user",
			"content": []interface{}{map[string]string{"type": "text", "text": o.prompt}}}},
		"stream":         true,
		"stream_options": map[string]bool{"include_usage": true},
	})
	// One kept-alive connection per stream in flight, as a pooled vendor SDK client would have.
	transport := &http.Transport{
		MaxIdleConns:        2 * o.concurrency,
		MaxIdleConnsPerHost: 2 * o.concurrency,
		DisableCompression:  true,
	}
	scheme := "http"
	if o.vendorCA != "" {
		pem, err := os.ReadFile(o.vendorCA)
		roots := x509.NewCertPool()
		if err != nil || !roots.AppendCertsFromPEM(pem) {
			fmt.Fprintf(os.Stderr, "load: cannot read a CA from %s: %v\n", o.vendorCA, err)
			os.Exit(2)
		}
		scheme = "https"
		transport.TLSClientConfig = &tls.Config{RootCAs: roots}
		transport.ForceAttemptHTTP2 = o.vendorHTTP2
	}
	return &direct{url: scheme + "://" + o.addr + "/v1/chat/completions", key: o.key, body: body,
		client: &http.Client{Transport: transport}}
}

func (d *direct) Open(ctx context.Context) (stream, error) {
	request, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(d.body))
	if err != nil {
		return nil, err
	}
	request.Header.Set("content-type", "application/json")
	request.Header.Set("accept", "text/event-stream")
	request.Header.Set("authorization", "Bearer "+d.key)
	response, err := d.client.Do(request)
	if err != nil {
		return nil, err
	}
	if response.StatusCode != http.StatusOK {
		message, _ := io.ReadAll(io.LimitReader(response.Body, 512))
		response.Body.Close()
		return nil, fmt.Errorf("HTTP %d: %s", response.StatusCode, bytes.TrimSpace(message))
	}
	return &sseStream{body: response.Body, reader: bufio.NewReaderSize(response.Body, 16<<10)}, nil
}

// sseStream reads one streamed chat completion.
type sseStream struct {
	body   io.ReadCloser
	reader *bufio.Reader
}

// chunk is the part of a chat.completion.chunk (or an error frame) the client reads.
type chunk struct {
	Choices []struct {
		Delta struct {
			Content string `json:"content"`
		} `json:"delta"`
	} `json:"choices"`
	Error *struct {
		Message string `json:"message"`
	} `json:"error"`
}

var dataPrefix = []byte("data: ")

func (s *sseStream) Next() (event, error) {
	for {
		line, err := s.reader.ReadSlice('\n')
		if err != nil {
			if err == io.EOF {
				return other, errors.New("stream ended without data: [DONE]")
			}
			return other, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if !bytes.HasPrefix(line, dataPrefix) {
			continue // the blank line between frames
		}
		data := line[len(dataPrefix):]
		if bytes.Equal(data, []byte("[DONE]")) {
			return other, io.EOF
		}
		var c chunk
		if err := json.Unmarshal(data, &c); err != nil {
			return other, fmt.Errorf("bad chunk: %v", err)
		}
		if c.Error != nil {
			return other, fmt.Errorf("vendor error mid-stream: %s", c.Error.Message)
		}
		if len(c.Choices) > 0 && c.Choices[0].Delta.Content != "" {
			return token, nil
		}
		return other, nil
	}
}

// Close reads the rest of the body (the chunked terminator) so that the connection is reused.
func (s *sseStream) Close() {
	io.Copy(io.Discard, s.body)
	s.body.Close()
}
