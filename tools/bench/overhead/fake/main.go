// The overhead benchmark's fake vendor (tools/bench/overhead/run.sh): an OpenAI Chat Completions
// server that answers every POST /v1/chat/completions with stream:true by streaming N content
// deltas, in the wire format of shared/vendor-apis.md §2, flushing each frame, with a fixed delay
// between deltas. Go's net/http serves each connection on a goroutine, so 512+ concurrent streams
// cost little. GET /stats reports connections accepted and requests served, so the benchmark can
// see whether a client reuses its connections, and the streams open now, which the benchmark
// awaits when it holds idle streams (--first-delay, or POST /first-delay?d=10m at run time).
// Usage: fake --port P [--deltas N] [--delay D] [--first-delay D].
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Counters, read by GET /stats.
var (
	connectionsAccepted atomic.Int64
	requestsStarted     atomic.Int64
	streamsCompleted    atomic.Int64
	streamsCut          atomic.Int64
	streamsOpen         atomic.Int64 // answers whose headers are sent and that have not ended
	firstDelay          atomic.Int64 // nanoseconds between the role delta and the first content delta
)

// chatRequest is the part of the request body the fake reads.
type chatRequest struct {
	Model         string `json:"model"`
	Stream        bool   `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	Messages []json.RawMessage `json:"messages"`
}

// answer holds every frame of one streamed answer, built once per model and reused: the fake
// should spend its CPU on sending, not on formatting JSON.
type answer struct {
	first  []byte   // role/content "" delta
	deltas [][]byte // N content deltas
	finish []byte   // delta {} with finish_reason "stop"
	usage  []byte   // choices [] with usage, sent only for stream_options.include_usage
	done   []byte
}

type fake struct {
	deltas int
	delay  time.Duration
	key    string

	mu      sync.Mutex
	answers map[string]*answer
}

func frame(chunk interface{}) []byte {
	data, err := json.Marshal(chunk)
	if err != nil {
		panic(err)
	}
	return []byte("data: " + string(data) + "\n\n")
}

// chunk is one chat.completion.chunk, keys in the order OpenAI sends them.
type chunk struct {
	ID                string           `json:"id"`
	Object            string           `json:"object"`
	Created           int64            `json:"created"`
	Model             string           `json:"model"`
	ServiceTier       string           `json:"service_tier"`
	SystemFingerprint string           `json:"system_fingerprint"`
	Choices           []interface{}    `json:"choices"`
	Usage             *json.RawMessage `json:"usage,omitempty"` // absent without include_usage
	Obfuscation       string           `json:"obfuscation"`
}

// choiceJSON and usageJSON keep OpenAI's key order (Go sorts the keys of maps).
type choiceJSON struct {
	Index        int             `json:"index"`
	Delta        json.RawMessage `json:"delta"`
	Logprobs     *struct{}       `json:"logprobs"`
	FinishReason *string         `json:"finish_reason"`
}

type usageJSON struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

func (f *fake) answerFor(model string, includeUsage bool) *answer {
	key := model + "\x00" + strconv.FormatBool(includeUsage)
	f.mu.Lock()
	defer f.mu.Unlock()
	if a, ok := f.answers[key]; ok {
		return a
	}
	created := time.Now().Unix()
	null := json.RawMessage("null")
	pack := func(choices []interface{}, usage interface{}, padding string) []byte {
		var raw *json.RawMessage
		if includeUsage {
			raw = &null
			if usage != nil {
				data, _ := json.Marshal(usage)
				value := json.RawMessage(data)
				raw = &value
			}
		}
		return frame(chunk{"chatcmpl-bench", "chat.completion.chunk", created, model, "default", "fp_bench",
			choices, raw, padding})
	}
	choice := func(delta string, finish *string) []interface{} {
		return []interface{}{choiceJSON{0, json.RawMessage(delta), nil, finish}}
	}
	stop := "stop"
	// obfuscation is random padding in the real API; a few varying letters are as costly.
	pad := func(i int) string { return "abcdefgh"[:1+i%8] }
	a := &answer{
		first:  pack(choice(`{"role":"assistant","content":"","refusal":null}`, nil), nil, pad(0)),
		finish: pack(choice(`{}`, &stop), nil, pad(1)),
		usage:  pack([]interface{}{}, usageJSON{16, f.deltas, 16 + f.deltas}, pad(2)),
		done:   []byte("data: [DONE]\n\n"),
	}
	for i := 0; i < f.deltas; i++ {
		content, _ := json.Marshal("tok" + strconv.Itoa(i) + " ")
		a.deltas = append(a.deltas, pack(choice(`{"content":`+string(content)+`}`, nil), nil, pad(i)))
	}
	f.answers[key] = a
	return a
}

// vendorError answers with OpenAI's error body.
func vendorError(w http.ResponseWriter, status int, kind, message string) {
	w.Header().Set("content-type", "application/json")
	w.WriteHeader(status)
	body, _ := json.Marshal(map[string]interface{}{"error": map[string]interface{}{
		"message": message, "type": kind, "param": nil, "code": nil}})
	w.Write(body)
}

func (f *fake) chatCompletions(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		vendorError(w, http.StatusMethodNotAllowed, "invalid_request_error", "use POST")
		return
	}
	if f.key != "" && r.Header.Get("authorization") != "Bearer "+f.key {
		vendorError(w, http.StatusUnauthorized, "invalid_request_error", "Incorrect API key provided.")
		return
	}
	var request chatRequest
	if err := json.NewDecoder(r.Body).Decode(&request); err != nil {
		vendorError(w, http.StatusBadRequest, "invalid_request_error", "We could not parse the JSON body of your request.")
		return
	}
	if !request.Stream || request.Model == "" || len(request.Messages) == 0 {
		vendorError(w, http.StatusBadRequest, "invalid_request_error",
			"this fake serves only stream:true requests with a model and messages")
		return
	}
	requestsStarted.Add(1)
	includeUsage := request.StreamOptions != nil && request.StreamOptions.IncludeUsage
	a := f.answerFor(request.Model, includeUsage)
	flusher := w.(http.Flusher)
	header := w.Header()
	header.Set("content-type", "text/event-stream; charset=utf-8")
	header.Set("x-request-id", "req_bench")
	header.Set("openai-processing-ms", "1")
	header.Set("openai-version", "2020-10-01")
	w.WriteHeader(http.StatusOK)
	send := func(frame []byte) bool {
		if _, err := w.Write(frame); err != nil {
			return false
		}
		flusher.Flush()
		return true
	}
	streamsOpen.Add(1)
	defer streamsOpen.Add(-1)
	ok := send(a.first)
	// An idle stream: open, headers and role delta sent, no text yet. A client that goes away
	// ends the wait, so that the open count falls when the streams are cut.
	if hold := time.Duration(firstDelay.Load()); ok && hold > 0 {
		select {
		case <-time.After(hold):
		case <-r.Context().Done():
			ok = false
		}
	}
	for i := 0; ok && i < len(a.deltas); i++ {
		if f.delay > 0 {
			time.Sleep(f.delay)
		}
		ok = send(a.deltas[i])
	}
	ok = ok && send(a.finish)
	if ok && includeUsage {
		ok = send(a.usage)
	}
	ok = ok && send(a.done)
	if ok {
		streamsCompleted.Add(1)
	} else {
		streamsCut.Add(1)
	}
}

func stats(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("content-type", "application/json")
	json.NewEncoder(w).Encode(map[string]int64{
		"connections_accepted": connectionsAccepted.Load(),
		"requests":             requestsStarted.Load(),
		"streams_completed":    streamsCompleted.Load(),
		"streams_cut":          streamsCut.Load(),
		"streams_open":         streamsOpen.Load(),
	})
}

// setFirstDelay changes --first-delay for the answers that start from now on: POST
// /first-delay?d=10m (a Go duration; 0 turns it off).
func setFirstDelay(w http.ResponseWriter, r *http.Request) {
	hold, err := time.ParseDuration(r.URL.Query().Get("d"))
	if r.Method != http.MethodPost || err != nil || hold < 0 {
		http.Error(w, "use POST /first-delay?d=DURATION (e.g. 10m, 0)", http.StatusBadRequest)
		return
	}
	firstDelay.Store(int64(hold))
	w.WriteHeader(http.StatusNoContent)
}

func main() {
	port := flag.Int("port", 0, "port to listen on (0: any; the chosen one is printed)")
	deltas := flag.Int("deltas", 200, "content deltas per answer")
	// 2 ms between deltas is ~500 tokens/s, the speed of today's fast hosted models: a stream of
	// 200 deltas lasts ~0.4 s, long enough that time to first and last token differ clearly,
	// short enough for many samples per run, and the gateway's per-delta work is not hidden
	// behind long sleeps.
	delay := flag.Duration("delay", 2*time.Millisecond, "pause between content deltas")
	// A long first delay holds streams open and idle, to measure what an idle stream costs the
	// gateway (memory, threads).
	hold := flag.Duration("first-delay", 0, "pause between the role delta and the first content delta")
	key := flag.String("key", "", "API key required as 'authorization: Bearer KEY' (empty: any)")
	// HTTPS as the vendors serve it: TLS, and HTTP/2 for clients that offer it (ALPN).
	certFile := flag.String("tls-cert", "", "PEM certificate: serve HTTPS (HTTP/2 or 1.1) instead of HTTP")
	keyFile := flag.String("tls-key", "", "PEM private key of --tls-cert")
	flag.Parse()

	firstDelay.Store(int64(*hold))
	f := &fake{deltas: *deltas, delay: *delay, key: *key, answers: map[string]*answer{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/chat/completions", f.chatCompletions)
	mux.HandleFunc("/stats", stats)
	mux.HandleFunc("/first-delay", setFirstDelay)
	server := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ConnState: func(_ net.Conn, state http.ConnState) {
			if state == http.StateNew {
				connectionsAccepted.Add(1)
			}
		},
	}
	listener, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(*port))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("PORT %d\n", listener.Addr().(*net.TCPAddr).Port)
	os.Stdout.Sync()
	serve := func() error { return server.Serve(listener) }
	if *certFile != "" {
		serve = func() error { return server.ServeTLS(listener, *certFile, *keyFile) }
	}
	if err := serve(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
