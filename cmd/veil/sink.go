package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/veilhq/veil"
	"github.com/veilhq/veil/ats"
)

// runSink is a local destination: it prints each delivery and checks its
// Standard Webhooks signature. With --secret, a bad signature is answered 401.
func runSink(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) error {
	fs, _ := c.flags()
	listen := fs.String("listen", "127.0.0.1:9000", "address to listen on")
	secret := fs.String("secret", "", "the destination's signing_secret (whsec_…), to verify signatures")
	if pos, err := c.parse(fs, args, stdout, stderr); err != nil {
		return err
	} else if len(pos) != 0 {
		return c.usage(fs, stderr, "sink takes no arguments")
	}
	var key []byte
	if *secret != "" {
		var err error
		if key, err = veil.DecodeStandardSecret(*secret); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *listen, err)
	}
	fmt.Fprintf(stdout, "{\"msg\":\"listening\",\"addr\":\"http://%s\"}\nveil sink: printing deliveries sent to http://%s/…\n", ln.Addr(), ln.Addr())
	var mu sync.Mutex // one delivery printed at a time
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		verdict := "not checked (no --secret)"
		ok := true
		if key != nil {
			ok = ats.StandardSigned([][]byte{key}, r.Header, body)
			verdict = map[bool]string{true: "valid", false: "INVALID"}[ok]
		}
		var pretty bytes.Buffer
		if json.Indent(&pretty, body, "  ", "  ") != nil {
			pretty.Write(body)
		}
		mu.Lock()
		fmt.Fprintf(stdout, "\n--- %s %s\n  webhook-id: %s\n  Veil-Event-Id: %s\n  signature: %s\n  %s\n",
			r.Method, r.URL.Path, r.Header.Get("webhook-id"), r.Header.Get("Veil-Event-Id"), verdict, pretty.String())
		mu.Unlock()
		if !ok {
			http.Error(w, `{"error":"invalid_signature"}`, http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusOK)
	})}
	go func() { <-ctx.Done(); srv.Shutdown(context.Background()) }()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
