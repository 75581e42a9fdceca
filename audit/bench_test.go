package audit_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/veilhq/veil"
)

// BenchmarkIngest: events with three deliveries (one pending, two
// filtered), committed from 32 goroutines, on each driver.
func BenchmarkIngest(b *testing.B) {
	for _, drv := range drivers {
		b.Run(drv, func(b *testing.B) {
			st := newTestDB(b, drv).open(b)
			ctx := context.Background()
			var n atomic.Int64
			payload := make([]byte, 5500)
			for i := range payload {
				payload[i] = 'a' + byte(i%26)
			}
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					e := &veil.Event{Source: "greenhouse", Vendor: "greenhouse", EventType: "new_candidate_application",
						Subject: fmt.Sprint("greenhouse:candidate:", i), DedupKey: fmt.Sprint("bench-", i), ReceivedAt: time.Now(),
						Payload: payload, App: &veil.AppState{ID: fmt.Sprint("app-", i), Stage: "Application Review", Outcome: "active"},
						Refs: []string{fmt.Sprint("greenhouse:candidate:", i), fmt.Sprint("greenhouse:application:", i)}}
					ds := []*veil.Delivery{
						{Destination: "bi", Status: veil.DeliveryPending, Body: []byte(`{"id":"ps_1"}`), FieldsKept: []string{"id"}},
						{Destination: "slack", Status: veil.DeliveryFiltered, FieldsDropped: []string{"a", "b"}},
						{Destination: "hris", Status: veil.DeliveryFiltered, FieldsDropped: []string{"a", "b"}},
					}
					if _, _, err := st.IngestEvent(ctx, e, ds, veil.Drift{}); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
