package main

import (
	"runtime"
	"runtime/metrics"
	"sort"
	"sync/atomic"
	"time"
)

func sortFloats(v []float64) { sort.Float64s(v) }

type node struct{ left, right *node }

func bottomUp(d int) *node {
	if d <= 0 {
		return &node{}
	}
	return &node{bottomUp(d - 1), bottomUp(d - 1)}
}

func (t *node) check() int {
	if t.left == nil {
		return 1
	}
	return 1 + t.left.check() + t.right.check()
}

// binaryTrees: the Benchmarks Game workload, sequential.
func binaryTrees() {
	maxDepth := *depth
	if maxDepth < 6 {
		maxDepth = 6
	}
	start := time.Now()
	stretch := maxDepth + 1
	if bottomUp(stretch).check() != 1<<(stretch+1)-1 {
		panic("stretch")
	}
	longLived := bottomUp(maxDepth)
	for d := 4; d <= maxDepth; d += 2 {
		iterations := 1 << (maxDepth - d + 4)
		sum := 0
		for i := 0; i < iterations; i++ {
			sum += bottomUp(d).check()
		}
		if sum != iterations*(1<<(d+1)-1) {
			panic("sum")
		}
	}
	if longLived.check() != 1<<(maxDepth+1)-1 {
		panic("long lived")
	}
	secs := time.Since(start).Seconds()
	name := "binary_trees_" + itoa(maxDepth)
	report(name, "time", secs, "s")
	report(name, "peak_rss", float64(procStatusBytes("VmHWM"))/(1<<20), "MiB")
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// gcLatency: a window of 1 KiB messages; the worst time of one push.
func gcLatency() {
	count := orDefault(*n, 1_000_000)
	store := make([][]byte, *window)
	var worst time.Duration
	for i := 0; i < count; i++ {
		t := time.Now()
		m := make([]byte, 1024)
		for j := range m {
			m[j] = byte(i)
		}
		store[i%*window] = m
		if el := time.Since(t); el > worst {
			worst = el
		}
	}
	runtime.KeepAlive(store)
	report("gc_latency", "worst_push", worst.Seconds()*1e3, "ms")
}

type valueNode struct {
	left, right *valueNode
	value       uint64
}

func tree(d int) *valueNode {
	if d == 0 {
		return &valueNode{value: 1}
	}
	return &valueNode{tree(d - 1), tree(d - 1), uint64(d)}
}

func (t *valueNode) sum() uint64 {
	s := t.value
	if t.left != nil {
		s += t.left.sum()
	}
	if t.right != nil {
		s += t.right.sum()
	}
	return s
}

const pauseMetric = "/sched/pauses/total/gc:seconds"

func readPauses() *metrics.Float64Histogram {
	s := []metrics.Sample{{Name: pauseMetric}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64Histogram {
		panic("no " + pauseMetric)
	}
	return s[0].Value.Float64Histogram()
}

// gcPause: stop-the-world pauses with a live heap of trees, parked
// goroutines, a mutator churning short-lived trees and one goroutine
// spinning in a loop without calls (Go preempts it with a signal, as fibra
// does its spinning task). Read from Go's own pause histogram; each pause
// counts at its bucket's midpoint.
func gcPause() {
	var stop atomic.Bool
	go func() {
		n := uint64(0)
		for !stop.Load() {
			n++
		}
		spinSink = n
	}()
	defer stop.Store(true)
	live := make([]*valueNode, *liveMB)
	for i := range live {
		live[i] = tree(15)
	}
	parked := orDefault(*tasks, 10_000)
	gate := make(chan struct{})
	for i := 0; i < parked; i++ {
		go func() { <-gate }()
	}
	before := readPauses()
	end := time.Now().Add(time.Duration(*secs) * time.Second)
	var checksum uint64
	for time.Now().Before(end) {
		for i := 0; i < 100; i++ {
			checksum += tree(6).sum()
		}
	}
	after := readPauses()
	close(gate)
	if checksum == 0 || live[0].sum() == 0 {
		panic("checksum")
	}
	var us []float64
	for i, c := range after.Counts {
		lo, hi := after.Buckets[i], after.Buckets[i+1]
		mid := (lo + hi) / 2
		if i == 0 || lo < 0 {
			mid = hi
		}
		if i == len(after.Counts)-1 {
			mid = lo
		}
		for k := before.Counts[i]; k < c; k++ {
			us = append(us, mid*1e6)
		}
	}
	if len(us) == 0 {
		panic("no gc pause while churning")
	}
	sort.Float64s(us)
	report("gc_pause", "p50", quantile(us, 0.5), "us")
	report("gc_pause", "p99", quantile(us, 0.99), "us")
	report("gc_pause", "max", us[len(us)-1], "us")
	report("gc_pause", "count", float64(len(us)), "pauses")
}

// spinSink keeps the spinning loop's counter alive.
var spinSink uint64
