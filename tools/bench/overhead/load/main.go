// The overhead benchmark's load client (tools/bench/overhead/run.sh): keeps N streamed
// generations in flight against one target and times each one the same way whatever the
// target: time to first token (the first non-empty text) and to last token (the clean end of
// the answer). `--target direct` talks OpenAI's streaming HTTP to the fake vendor itself;
// `--target prism` calls prism.v1.Prism/Generate, which goes through Prism to the same fake.
// Prints one JSON summary line (percentiles, errors, req/s) and can write every sample; with
// --watch-pid, also the server's CPU, deltas and answers over the measuring window, and its
// thread count and RSS sampled through the run (watch.go).
// Built offline in GOPATH mode against Debian's grpc-go and protobuf packages.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// event is what a target's stream yields: a token (non-empty text) or anything else.
type event int

const (
	token event = iota
	other
)

// stream is one answer being read. Next returns io.EOF at the clean end of the answer.
type stream interface {
	Next() (event, error)
	Close()
}

// target opens streams; one per benchmark process, shared by every worker.
type target interface {
	Open(ctx context.Context) (stream, error)
}

// sample is one timed request.
type sample struct {
	ttft, ttlt time.Duration
	err        error
}

// timeOne runs one request to its end: the only timing code, whatever the target.
func timeOne(t target, timeout time.Duration, expectTokens int) sample {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	s, err := t.Open(ctx)
	if err != nil {
		return sample{err: err}
	}
	defer s.Close()
	var result sample
	tokens := 0
	for {
		kind, err := s.Next()
		if err == io.EOF {
			result.ttlt = time.Since(start)
			break
		}
		if err != nil {
			return sample{err: err}
		}
		if kind == token {
			tokensSeen.Add(1)
			if tokens == 0 {
				result.ttft = time.Since(start)
			}
			tokens++
		}
	}
	if expectTokens > 0 && tokens != expectTokens {
		return sample{err: fmt.Errorf("answer had %d text deltas, expected %d", tokens, expectTokens)}
	}
	if tokens == 0 {
		return sample{err: errors.New("answer had no text")}
	}
	return result
}

type options struct {
	target, addr, model, prompt, key, samples  string
	vendorCA                                   string
	vendorHTTP2                                bool
	concurrency, connections, requests, tokens int
	watchPID                                   int
	duration, warmup, ramp, timeout, backoff   time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.target, "target", "", "direct (the fake vendor over HTTP) or prism (Generate over gRPC)")
	flag.StringVar(&o.addr, "addr", "", "HOST:PORT of the fake (direct) or of prism-server (prism)")
	flag.StringVar(&o.model, "model", "gpt-4o-mini", "model; prism routes to openai/MODEL")
	flag.StringVar(&o.prompt, "prompt", "Say something.", "user text sent")
	flag.StringVar(&o.key, "key", "bench", "API key sent to the fake (direct)")
	flag.StringVar(&o.vendorCA, "vendor-ca", "", "PEM CA: reach the fake over HTTPS, trusting this CA (direct)")
	flag.BoolVar(&o.vendorHTTP2, "vendor-http2", false, "with --vendor-ca: HTTP/2, every stream on one connection (direct)")
	flag.IntVar(&o.concurrency, "concurrency", 1, "streams kept in flight")
	flag.IntVar(&o.connections, "connections", 0, "gRPC connections (prism; 0: one per 128 streams, under Prism's 256 per connection)")
	flag.IntVar(&o.requests, "requests", 0, "measured requests (0: run for --duration)")
	flag.IntVar(&o.tokens, "expect-tokens", 0, "text deltas every answer must have (0: any number but none)")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measuring time, after the warm-up")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured time first (never shorter than --ramp)")
	flag.DurationVar(&o.ramp, "ramp", time.Second, "workers start spread over this time, so streams do not move in lockstep")
	flag.DurationVar(&o.timeout, "timeout", 60*time.Second, "deadline of one request")
	flag.StringVar(&o.samples, "samples", "", "file to write 'ttft_us ttlt_us' of every measured request to")
	// A refused request returns at once; without a pause its worker would retry in a hot loop
	// and measure the client's own speed at failing.
	flag.DurationVar(&o.backoff, "error-backoff", 100*time.Millisecond, "pause of a worker after a failed request")
	flag.IntVar(&o.watchPID, "watch-pid", 0, "server process to watch (CPU over the window, threads and RSS over the run)")
	flag.Parse()
	if o.concurrency < 1 || o.addr == "" {
		fail("--addr is required and --concurrency must be at least 1")
	}
	var t target
	var err error
	switch o.target {
	case "direct":
		t = newDirect(o)
	case "prism":
		t, err = newPrism(o)
	default:
		fail("--target must be direct or prism")
	}
	if err != nil {
		fail(err.Error())
	}
	summary := run(t, o)
	line, _ := json.Marshal(summary)
	fmt.Println(string(line))
}

func fail(message string) {
	fmt.Fprintln(os.Stderr, "load: "+message)
	os.Exit(2)
}

// run keeps o.concurrency workers busy; a request is measured when it starts inside the
// measuring window (or, with --requests, when it is among the first N started there).
func run(t target, o options) map[string]interface{} {
	if o.warmup < o.ramp {
		o.warmup = o.ramp
	}
	begin := time.Now()
	measureFrom := begin.Add(o.warmup)
	measureUntil := measureFrom.Add(o.duration)
	var (
		mu       sync.Mutex
		measured []sample
		started  atomic.Int64 // measured requests started (--requests)
		total    atomic.Int64 // every request ended, warm-up included
		totalOK  atomic.Int64 // every request answered in full, warm-up included (CPU per request)
		wg       sync.WaitGroup
	)
	cpu0 := cpuSeconds()
	var w *watcher
	if o.watchPID > 0 {
		w = watch(o.watchPID, measureFrom, measureUntil, o.requests == 0, &totalOK)
	}
	for i := 0; i < o.concurrency; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			time.Sleep(o.ramp * time.Duration(i) / time.Duration(o.concurrency))
			for {
				now := time.Now()
				inWindow := !now.Before(measureFrom)
				if o.requests > 0 {
					if inWindow && started.Add(1) > int64(o.requests) {
						return
					}
				} else if !now.Before(measureUntil) {
					return
				}
				s := timeOne(t, o.timeout, o.tokens)
				total.Add(1)
				if s.err == nil {
					totalOK.Add(1)
				} else {
					time.Sleep(o.backoff)
				}
				if inWindow {
					mu.Lock()
					measured = append(measured, s)
					mu.Unlock()
				}
			}
		}(i)
	}
	wg.Wait()
	window := time.Since(measureFrom).Seconds()
	if o.requests == 0 {
		window = o.duration.Seconds()
	}
	summary := summarize(o, measured, total.Load(), totalOK.Load(), window, cpuSeconds()-cpu0)
	if w != nil {
		summary["server"] = w.stop()
	}
	return summary
}

// summarize gives nearest-rank percentiles of the successful samples, the errors by message
// (the first few), and writes the samples file.
func summarize(o options, samples []sample, total, totalOK int64, window, cpu float64) map[string]interface{} {
	var ttft, ttlt []time.Duration
	errorCounts := map[string]int{}
	failures := 0
	for _, s := range samples {
		if s.err != nil {
			failures++
			errorCounts[s.err.Error()]++
			continue
		}
		ttft = append(ttft, s.ttft)
		ttlt = append(ttlt, s.ttlt)
	}
	if o.samples != "" {
		file, err := os.Create(o.samples)
		if err != nil {
			fail(err.Error())
		}
		for i := range ttft {
			fmt.Fprintf(file, "%d %d\n", ttft[i].Microseconds(), ttlt[i].Microseconds())
		}
		file.Close()
	}
	var shownErrors []string
	for message, count := range errorCounts {
		if len(shownErrors) < 5 {
			shownErrors = append(shownErrors, fmt.Sprintf("%dx %s", count, message))
		}
	}
	sort.Strings(shownErrors)
	return map[string]interface{}{
		"target":       o.target,
		"concurrency":  o.concurrency,
		"measured":     len(samples),
		"ok":           len(ttft),
		"errors":       failures,
		"error_kinds":  shownErrors,
		"completed":    total,
		"completed_ok": totalOK,
		"req_per_s":    float64(len(ttft)) / window,
		"ttft_ms":      percentiles(ttft),
		"ttlt_ms":      percentiles(ttlt),
		"client_cpu_s": cpu,
	}
}

func percentiles(values []time.Duration) map[string]float64 {
	if len(values) == 0 {
		return nil
	}
	sort.Slice(values, func(i, j int) bool { return values[i] < values[j] })
	rank := func(fraction float64) float64 {
		index := int(math.Ceil(fraction*float64(len(values)))) - 1
		if index < 0 {
			index = 0
		}
		if index >= len(values) {
			index = len(values) - 1
		}
		return float64(values[index].Microseconds()) / 1000
	}
	return map[string]float64{"p50": rank(0.50), "p99": rank(0.99), "max": rank(1)}
}

// cpuSeconds is this process's user+system CPU so far.
func cpuSeconds() float64 {
	var usage syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &usage)
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano()).Seconds()
}
