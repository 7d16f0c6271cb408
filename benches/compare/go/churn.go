package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/metrics"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
)

// The same GC churn as fibra's examples/shared/gc_churn.rs, for the
// http_server question: with -churn=N every request builds N lists of
// listLen nodes of about 96 bytes, walks them and stores the first in a
// ring of the ringSlots most recent lists (the bounded live set).
var churnFactor = flag.Int("churn", 0, "http_server: lists built per request (0: no churn)")

const (
	listLen   = 8
	ringSlots = 4096
)

// churnSink keeps the checksums alive (the work cannot be optimised away).
var churnSink atomic.Uint64

type churnNode struct {
	seq     uint64
	payload [9]uint64
	next    *churnNode
}

type churn struct {
	factor   int
	requests atomic.Uint64
	mu       [ringSlots]sync.Mutex
	ring     [ringSlots]*churnNode
}

func newChurn(factor int) *churn {
	if factor <= 0 {
		return nil
	}
	return &churn{factor: factor}
}

func buildList(seed uint64) *churnNode {
	var head *churnNode
	for i := uint64(0); i < listLen; i++ {
		seq := seed + i
		n := &churnNode{seq: seq, next: head}
		for j := range n.payload {
			n.payload[j] = seq
		}
		head = n
	}
	return head
}

// request does one request's churn and returns a checksum of it.
func (c *churn) request() uint64 {
	n := c.requests.Add(1) - 1
	var sum uint64
	for round := uint64(0); round < uint64(c.factor); round++ {
		list := buildList(n*31 + round)
		for at := list; at != nil; at = at.next {
			sum += at.seq ^ at.payload[8]
		}
		if round == 0 {
			slot := n % ringSlots
			c.mu[slot].Lock()
			c.ring[slot] = list
			c.mu[slot].Unlock()
		}
	}
	return sum
}

// printPausesOnSignal prints, on SIGINT or SIGTERM, the line fibra's
// example servers print ("gc pauses: n=... p50=...us p99=...us
// max=...us"), from Go's own pause histogram (each pause at its bucket's
// upper bound, as fibra's summary gives bucket upper bounds), then exits.
func printPausesOnSignal() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sigs
		h := readPauses()
		var us []float64
		for i, c := range h.Counts {
			hi := h.Buckets[i+1]
			if i == len(h.Counts)-1 {
				hi = h.Buckets[i]
			}
			for k := uint64(0); k < c; k++ {
				us = append(us, hi*1e6)
			}
		}
		sort.Float64s(us)
		if len(us) == 0 {
			fmt.Println("gc pauses: n=0")
		} else {
			var cycles [1]metrics.Sample
			cycles[0].Name = "/gc/cycles/total:gc-cycles"
			metrics.Read(cycles[:])
			fmt.Printf("gc pauses: n=%d p50=%.1fus p99=%.1fus max=%.1fus cycles=%d\n",
				len(us), quantile(us, 0.5), quantile(us, 0.99), us[len(us)-1], cycles[0].Value.Uint64())
		}
		os.Exit(0)
	}()
}
