// Command compare is the Go side of fibra's side-by-side benchmarks: one
// program, one question per -q, each printing the same RESULT line as the
// Rust programs in ../src/bin.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

var (
	question = flag.String("q", "", "question to run: "+strings.Join(questionNames(), ", "))
	n        = flag.Int("n", 0, "operations (0: the question's default)")
	workers  = flag.Int("workers", runtime.NumCPU(), "GOMAXPROCS")
	tasks    = flag.Int("tasks", 0, "tasks (0: the question's default)")
	rounds   = flag.Int("rounds", 5, "sleeps per sleeper")
	depth    = flag.Int("depth", 21, "binary-trees depth")
	window   = flag.Int("window", 200_000, "gc-latency window")
	liveMB   = flag.Int("live_mb", 256, "gc-pause live heap (MiB)")
	secs     = flag.Int("secs", 3, "gc-pause churn seconds")
	addr     = flag.String("addr", "127.0.0.1:0", "server listen address")
)

var questions = map[string]func(){
	"spawn_join":     spawnJoin,
	"yield":          yield,
	"chan_pingpong":  chanPingPong,
	"chan_buffered":  chanBuffered,
	"thread_ring":    threadRing,
	"pingpong_pairs": pingpongPairs,
	"mutex":          mutex,
	"sleep":          sleep,
	"parked_memory":  parkedMemory,
	"park_wake":      parkWake,
	"echo_server":    echoServer,
	"http_server":    httpServer,
	"binary_trees":   binaryTrees,
	"gc_latency":     gcLatency,
	"gc_pause":       gcPause,
}

func questionNames() []string {
	names := []string{}
	for k := range questions {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

func main() {
	flag.Parse()
	run, ok := questions[*question]
	if !ok {
		fmt.Fprintf(os.Stderr, "unknown -q %q; one of %v\n", *question, questionNames())
		os.Exit(2)
	}
	runtime.GOMAXPROCS(*workers)
	run()
}

// report prints one result line.
func report(name, metric string, value float64, unit string) {
	fmt.Printf("RESULT name=%s runtime=go metric=%s value=%.3f unit=%s\n", name, metric, value, unit)
}

func orDefault(v, d int) int {
	if v == 0 {
		return d
	}
	return v
}

func nsPer(d time.Duration, ops int) float64 {
	return float64(d.Nanoseconds()) / float64(ops)
}

// procStatusBytes reads one field of /proc/self/status (VmRSS, VmHWM).
func procStatusBytes(field string) uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		panic(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				panic(err)
			}
			return kb * 1024
		}
	}
	panic("no " + field + " in /proc/self/status")
}

// quantile is the nearest-rank q-quantile of sorted.
func quantile(sorted []float64, q float64) float64 {
	rank := int(q*float64(len(sorted)) + 0.999999999)
	if rank < 1 {
		rank = 1
	}
	if rank > len(sorted) {
		rank = len(sorted)
	}
	return sorted[rank-1]
}
