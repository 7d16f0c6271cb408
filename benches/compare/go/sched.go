package main

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// spawnJoin: `go f()` + WaitGroup for many goroutines that finish at once.
func spawnJoin() {
	count := orDefault(*n, 1_000_000)
	round := func(count int) float64 {
		start := time.Now()
		var wg sync.WaitGroup
		wg.Add(count)
		for i := 0; i < count; i++ {
			go func() { wg.Done() }()
		}
		wg.Wait()
		return nsPer(time.Since(start), count)
	}
	round(count / 10)
	report("spawn_join", "time", round(count), "ns/task")
}

// yield: two goroutines on one P calling Gosched in turn.
func yield() {
	runtime.GOMAXPROCS(1)
	count := orDefault(*n, 2_000_000)
	round := func(count int) float64 {
		start := time.Now()
		var wg sync.WaitGroup
		wg.Add(2)
		for g := 0; g < 2; g++ {
			go func() {
				for i := 0; i < count; i++ {
					runtime.Gosched()
				}
				wg.Done()
			}()
		}
		wg.Wait()
		return nsPer(time.Since(start), 2*count)
	}
	round(count / 10)
	report("yield", "time", round(count), "ns/yield")
}

// chanPingPong: round trips over two unbuffered channels.
func chanPingPong() {
	count := orDefault(*n, 1_000_000)
	round := func(count int) float64 {
		ping, pong := make(chan int), make(chan int)
		go func() {
			for v := range ping {
				pong <- v
			}
		}()
		start := time.Now()
		for i := 0; i < count; i++ {
			ping <- i
			if <-pong != i {
				panic("wrong value")
			}
		}
		ns := nsPer(time.Since(start), count)
		close(ping)
		return ns
	}
	round(count / 10)
	report(fmt.Sprintf("chan_pingpong_%dw", *workers), "time", round(count), "ns/roundtrip")
}

// chanBuffered: one producer, one consumer, capacity 1024.
func chanBuffered() {
	count := orDefault(*n, 5_000_000)
	round := func(count int) float64 {
		ch := make(chan int, 1024)
		start := time.Now()
		go func() {
			for i := 0; i < count; i++ {
				ch <- i
			}
			close(ch)
		}()
		sum := 0
		for v := range ch {
			sum += v
		}
		ns := nsPer(time.Since(start), count)
		if sum != count*(count-1)/2 {
			panic("wrong sum")
		}
		return ns
	}
	round(count / 10)
	report(fmt.Sprintf("chan_buffered_%dw", *workers), "time", round(count), "ns/msg")
}

// mutex: many goroutines incrementing one counter behind sync.Mutex.
func mutex() {
	count := orDefault(*n, 2_000_000)
	goroutines := orDefault(*tasks, 16)
	round := func(perTask int) float64 {
		var mu sync.Mutex
		counter := 0
		var wg sync.WaitGroup
		wg.Add(goroutines)
		start := time.Now()
		for g := 0; g < goroutines; g++ {
			go func() {
				for i := 0; i < perTask; i++ {
					mu.Lock()
					counter++
					mu.Unlock()
				}
				wg.Done()
			}()
		}
		wg.Wait()
		ns := nsPer(time.Since(start), goroutines*perTask)
		if counter != goroutines*perTask {
			panic("lost increments")
		}
		return ns
	}
	round(count / goroutines / 10)
	report("mutex", "time", round(count/goroutines), "ns/lock")
}

// sleep: how late time.Sleep(1ms) wakes with many sleepers.
func sleep() {
	sleepers := orDefault(*tasks, 10_000)
	late := make([]float64, sleepers**rounds)
	var wg sync.WaitGroup
	wg.Add(sleepers)
	for g := 0; g < sleepers; g++ {
		go func(g int) {
			for r := 0; r < *rounds; r++ {
				t := time.Now()
				time.Sleep(time.Millisecond)
				late[g**rounds+r] = float64(time.Since(t).Nanoseconds()-1e6) / 1e3
			}
			wg.Done()
		}(g)
	}
	wg.Wait()
	sortFloats(late)
	report("sleep_1ms", "p50_late", quantile(late, 0.5), "us")
	report("sleep_1ms", "p99_late", quantile(late, 0.99), "us")
}

// parkedMemory: resident bytes per goroutine parked on a channel.
func parkedMemory() {
	count := orDefault(*n, 100_000)
	gate := make(chan struct{})
	var parked, done atomic.Int64
	before := procStatusBytes("VmRSS")
	for i := 0; i < count; i++ {
		go func() {
			parked.Add(1)
			<-gate
			done.Add(1)
		}()
	}
	for parked.Load() < int64(count) {
		runtime.Gosched()
	}
	after := procStatusBytes("VmRSS")
	close(gate)
	for done.Load() < int64(count) {
		runtime.Gosched()
	}
	report("parked_memory", "rss", float64(after-before)/float64(count), "B/task")
}

// threadRing: 503 goroutines in a ring pass a token over unbuffered
// channels; ns per hop.
func threadRing() {
	const threads = 503
	hops := orDefault(*n, 2_000_000)
	round := func(hops int) float64 {
		chans := make([]chan int, threads)
		for i := range chans {
			chans[i] = make(chan int)
		}
		done := make(chan struct{}, 1)
		var wg sync.WaitGroup
		wg.Add(threads)
		for i := 0; i < threads; i++ {
			in, next := chans[i], chans[(i+1)%threads]
			go func() {
				defer wg.Done()
				for token := range in {
					if token == 0 {
						done <- struct{}{}
					} else {
						next <- token - 1
					}
				}
			}()
		}
		start := time.Now()
		chans[0] <- hops
		<-done
		ns := nsPer(time.Since(start), hops)
		for _, c := range chans {
			close(c)
		}
		wg.Wait()
		return ns
	}
	round(hops / 10)
	report(fmt.Sprintf("thread_ring_%dw", *workers), "time", round(hops), "ns/hop")
}

// pingpongPairs: 16 pairs of goroutines doing round trips over unbuffered
// channels at once; ns per round trip over all pairs.
func pingpongPairs() {
	count := orDefault(*n, 2_000_000)
	pairs := orDefault(*tasks, 16)
	round := func(perPair int) float64 {
		start := time.Now()
		var wg sync.WaitGroup
		wg.Add(2 * pairs)
		for p := 0; p < pairs; p++ {
			ping, pong := make(chan int), make(chan int)
			go func() {
				defer wg.Done()
				for v := range ping {
					pong <- v
				}
			}()
			go func() {
				defer wg.Done()
				for i := 0; i < perPair; i++ {
					ping <- i
					if <-pong != i {
						panic("wrong value")
					}
				}
				close(ping)
			}()
		}
		wg.Wait()
		return nsPer(time.Since(start), pairs*perPair)
	}
	round(count / pairs / 10)
	report(fmt.Sprintf("pingpong_pairs_%dw", *workers), "time", round(count/pairs), "ns/roundtrip")
}

// parkWake: n goroutines each report on a WaitGroup and park receiving from
// one channel; once all have started the channel is closed and every one
// is waited for (a second WaitGroup: Go has no join handles).
func parkWake() {
	count := orDefault(*n, 100_000)
	round := func() (time.Duration, time.Duration) {
		ch := make(chan struct{})
		var started, done sync.WaitGroup
		started.Add(count)
		done.Add(count)
		t0 := time.Now()
		for i := 0; i < count; i++ {
			go func() {
				started.Done()
				<-ch
				done.Done()
			}()
		}
		started.Wait()
		start := time.Since(t0)
		t1 := time.Now()
		close(ch)
		done.Wait()
		return start, time.Since(t1)
	}
	start, wake := round()
	for r := 1; r < *rounds; r++ {
		start, wake = round()
	}
	name := fmt.Sprintf("park_wake_%d", count)
	report(name, "start", nsPer(start, count), "ns/task")
	report(name, "wake_join", nsPer(wake, count), "ns/task")
}
