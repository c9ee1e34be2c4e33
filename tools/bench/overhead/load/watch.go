// The load client's view of the server under test (--watch-pid): its CPU (utime+stime of
// /proc/PID/stat) and the text deltas and answers the client received between the two edges
// of the measuring window, and its thread count and RSS (/proc/PID/status) sampled through the
// whole run, so that the report can give CPU per answer and per delta and threads per load.
package main

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// tokensSeen counts every text delta received, by every worker (a delta of an answer that
// later fails still cost the server its work).
var tokensSeen atomic.Int64

// sampleEvery is how often threads and RSS are read: often enough to catch the peak of a
// 10 s run, rare enough to cost the client nothing measurable.
const sampleEvery = 100 * time.Millisecond

// edge is what the counters said at one edge of the window.
type edge struct {
	at            time.Time
	ticks, tokens int64
	answers       int64
}

type watcher struct {
	pid     int
	answers *atomic.Int64 // answers received in full, shared with run
	mu      sync.Mutex
	from    *edge
	until   *edge
	threads int64 // maximum seen
	rssKiB  int64 // maximum seen
	done    chan struct{}
	stopped chan struct{}
}

// watch starts sampling pid now and takes the window's edges at from and (when timed) until;
// an untimed run (--requests) ends its window when stop is called.
func watch(pid int, from, until time.Time, timed bool, answers *atomic.Int64) *watcher {
	w := &watcher{pid: pid, answers: answers, done: make(chan struct{}), stopped: make(chan struct{})}
	time.AfterFunc(time.Until(from), func() { w.mark(&w.from) })
	if timed {
		time.AfterFunc(time.Until(until), func() { w.mark(&w.until) })
	}
	go func() {
		defer close(w.stopped)
		ticker := time.NewTicker(sampleEvery)
		defer ticker.Stop()
		for {
			w.sample()
			select {
			case <-w.done:
				return
			case <-ticker.C:
			}
		}
	}()
	return w
}

func (w *watcher) mark(slot **edge) {
	e := &edge{at: time.Now(), ticks: processTicks(w.pid), tokens: tokensSeen.Load(), answers: w.answers.Load()}
	w.mu.Lock()
	if *slot == nil {
		*slot = e
	}
	w.mu.Unlock()
}

func (w *watcher) sample() {
	threads, rss := processStatus(w.pid)
	w.mu.Lock()
	if threads > w.threads {
		w.threads = threads
	}
	if rss > w.rssKiB {
		w.rssKiB = rss
	}
	w.mu.Unlock()
}

// stop ends the sampling and returns the figures for the JSON summary; ticks are clock ticks
// (getconf CLK_TCK), -1 when the process could not be read.
func (w *watcher) stop() map[string]interface{} {
	w.mark(&w.from) // a run shorter than its warm-up has an empty window
	w.mark(&w.until)
	close(w.done)
	<-w.stopped
	w.mu.Lock()
	defer w.mu.Unlock()
	ticks := w.until.ticks - w.from.ticks
	if w.from.ticks < 0 || w.until.ticks < 0 {
		ticks = -1
	}
	return map[string]interface{}{
		"pid":         w.pid,
		"window_s":    w.until.at.Sub(w.from.at).Seconds(),
		"cpu_ticks":   ticks,
		"deltas":      w.until.tokens - w.from.tokens,
		"answers":     w.until.answers - w.from.answers,
		"threads_max": w.threads,
		"rss_max_kib": w.rssKiB,
	}
}

// processTicks is utime+stime of /proc/PID/stat (fields 14 and 15), -1 if unreadable.
func processTicks(pid int) int64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	// The command name (field 2) may hold spaces: count fields after its closing parenthesis.
	fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	if len(fields) < 13 {
		return -1
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return utime + stime
}

// processStatus is the Threads and VmRSS (KiB) lines of /proc/PID/status, 0 if unreadable.
func processStatus(pid int) (threads, rssKiB int64) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		switch fields[0] {
		case "Threads:":
			threads, _ = strconv.ParseInt(fields[1], 10, 64)
		case "VmRSS:":
			rssKiB, _ = strconv.ParseInt(fields[1], 10, 64)
		}
	}
	return threads, rssKiB
}
