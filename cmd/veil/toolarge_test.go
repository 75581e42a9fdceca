package main

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// oversized is a Greenhouse hire padded to 2 MiB (the limit is 1 MiB),
// signed as Greenhouse would.
func oversized(t *testing.T) (body []byte, signature string) {
	t.Helper()
	hire := mustRead(t, "../../testdata/samples/greenhouse/hire_candidate.json")
	pad := strings.Repeat("x", 2<<20-len(hire))
	body = append([]byte(`{"padding":"`+pad+`",`), bytes.TrimPrefix(bytes.TrimSpace(hire), []byte("{"))...)
	m := hmac.New(sha256.New, []byte("gh-fixture-secret-Qm7v2Lx9"))
	m.Write(body)
	return body, "sha256 " + hex.EncodeToString(m.Sum(nil))
}

// TestTooLarge_WriteAllThenRead: a client that writes the whole request,
// a signed 2 MiB body, before it reads anything reads a 413, three times
// in a row; a body announced far over what Veil drains is answered 413
// without being read. (On loopback the socket buffers hide the reset a
// server that closes on unread data causes; TestTooLarge_PythonClient is
// the sender that meets it.)
func TestTooLarge_WriteAllThenRead(t *testing.T) {
	p := startVeil(t, writeConfig(t, t.TempDir(), ""), &syncBuffer{})
	defer p.stop(t)
	body, sig := oversized(t)
	u, _ := url.Parse(p.url)
	for i := range 3 { // and again: nothing is left half-read
		c, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(30 * time.Second))
		head := fmt.Sprintf("POST /hooks/greenhouse HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"+
			"Signature: %s\r\nGreenhouse-Event-ID: big-%d\r\nContent-Length: %d\r\n\r\n", u.Host, sig, i, len(body))
		if _, err := c.Write(append([]byte(head), body...)); err != nil {
			t.Fatalf("write the whole request: %v", err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("read the answer after writing it all: %v", err)
		}
		resp.Body.Close()
		c.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("got %d, want 413", resp.StatusCode)
		}
	}

	// 64 MiB announced: answered at once, without reading it.
	req, _ := http.NewRequest(http.MethodPost, p.url+"/hooks/greenhouse", bytes.NewReader(nil))
	req.ContentLength = 64 << 20
	req.Body = http.NoBody
	req.Header.Set("Signature", sig)
	c, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(c, "POST /hooks/greenhouse HTTP/1.1\r\nHost: %s\r\nSignature: %s\r\nContent-Length: %d\r\n\r\n", u.Host, sig, 64<<20)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("64 MiB announced: %v %v, want 413", resp, err)
	}
}

// TestTooLarge_PythonClient: Python's urllib, the way many ATSs send
// (the whole body, then the answer), gets 413 for a signed 2 MiB body.
func TestTooLarge_PythonClient(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("no python3: every machine of this project has it")
		}
		t.Skip("no python3")
	}
	p := startVeil(t, writeConfig(t, t.TempDir(), ""), &syncBuffer{})
	defer p.stop(t)
	body, sig := oversized(t)
	file := filepath.Join(t.TempDir(), "body.json")
	if err := os.WriteFile(file, body, 0o600); err != nil {
		t.Fatal(err)
	}
	script := `import sys, urllib.request, urllib.error
body = open(sys.argv[2], "rb").read()
req = urllib.request.Request(sys.argv[1] + "/hooks/greenhouse", data=body, method="POST",
    headers={"Content-Type": "application/json", "Signature": sys.argv[3], "Greenhouse-Event-ID": "py-big"})
try:
    urllib.request.urlopen(req, timeout=30)
    print("status 200")
except urllib.error.HTTPError as e:
    print("status", e.code, e.read().decode())
`
	out, err := exec.Command(python, "-c", script, p.url, file, sig).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "status 413") || !strings.Contains(string(out), "payload_too_large") {
		t.Fatalf("python urllib: %v\n%s\nwant status 413 with payload_too_large", err, out)
	}
}
