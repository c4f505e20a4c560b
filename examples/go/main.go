// Delete products through the Partner Catalog Gateway: a signed POST, from Go.
//
//	go run . [-v] [--idempotency-key KEY] ID ... [-e EXTERNAL_ID ...]
//	                          sign and send one deletion request (retried if need be)
//	go run . --vectors FILE   check a signing vector file, send nothing
//
// Standard library only. See README.md beside it.
package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const deletionsPath = "/api/v1/partner/stores/products/deletions"

var credentials = []string{"PARTNER_CLIENT_ID", "PARTNER_SECRET", "STORE_CLIENT_ID", "STORE_TOKEN"}

var prog = progName()

func progName() string {
	if len(os.Args) > 0 && os.Args[0] != "" {
		return filepath.Base(os.Args[0])
	}
	return "delete-products"
}

func usage() {
	fmt.Fprintf(os.Stderr, "usage: %s [-v] [--idempotency-key KEY] ID ... [-e EXTERNAL_ID ...]\n", prog)
	fmt.Fprintf(os.Stderr, "       %s --vectors FILE\n", prog)
	os.Exit(2)
}

// --- signing -----------------------------------------------------------------------------------

// bodySha256 returns the lowercase hex SHA-256 of the raw body bytes.
func bodySha256(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// stringToSign joins the eight lines of the string to sign with LF, no trailing newline.
func stringToSign(method, path, query, partnerClientID, storeClientID, storeToken, timestamp, bodyHash string) string {
	return strings.Join([]string{
		strings.ToUpper(method), path, query, partnerClientID, storeClientID, storeToken, timestamp, bodyHash,
	}, "\n")
}

// sign returns the lowercase hex HMAC-SHA256 of the message (UTF-8), keyed with the UTF-8 bytes of
// the secret. Go strings are byte strings; these are UTF-8 when they come from UTF-8 text.
func sign(secret, message string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(message))
	return hex.EncodeToString(mac.Sum(nil))
}

// --- live mode ---------------------------------------------------------------------------------

func parseArgs(args []string) (ids, externalIDs []string, verbose bool, key string) {
	for i := 0; i < len(args); i++ {
		arg := args[i]
		switch {
		case arg == "-e":
			if i+1 >= len(args) {
				usage()
			}
			i++
			externalIDs = append(externalIDs, args[i])
		case arg == "-v" || arg == "--verbose":
			verbose = true
		case arg == "--idempotency-key":
			if i+1 >= len(args) || args[i+1] == "" {
				usage()
			}
			i++
			key = args[i]
		case arg == "--":
			ids = append(ids, args[i+1:]...)
			i = len(args)
		case strings.HasPrefix(arg, "-") && arg != "-":
			usage()
		default:
			ids = append(ids, arg)
		}
	}
	if len(ids)+len(externalIDs) == 0 {
		usage()
	}
	return ids, externalIDs, verbose, key
}

// jsonStrings encodes a list of strings as a compact JSON array, without HTML escaping.
func jsonStrings(values []string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(values); err != nil { // cannot fail for []string
		panic(err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n")
}

// retriedCodes are the answers worth sending again, signed anew with the same idempotency-key
// and body bytes.
var retriedCodes = map[string]bool{"RATE_001": true, "SYS_001": true, "IDEM_002": true}

const maxAttempts = 4 // the first attempt and at most three retries

// maskToken returns the store token as the gateway's AUTH_002 shows it: the first four characters
// of a token longer than eight kept, every other character a star.
func maskToken(token string) string {
	keep := 0
	if len(token) > 8 {
		keep = 4
	}
	return token[:keep] + strings.Repeat("*", len(token)-keep)
}

// masked returns the string to sign with line 6, the store token, masked.
func masked(message, token string) string {
	lines := strings.Split(message, "\n")
	lines[5] = maskToken(token)
	return strings.Join(lines, "\n")
}

// newKey returns a random UUID (version 4).
func newKey() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// answer is the part of the gateway's JSON answer that the client acts on.
type answer struct {
	Error *struct {
		Code string `json:"code"`
	} `json:"error"`
	Data *struct {
		Summary *struct {
			Total  int  `json:"total"`
			Failed *int `json:"failed"`
		} `json:"summary"`
	} `json:"data"`
}

func deleteProducts(args []string) int {
	ids, externalIDs, verbose, key := parseArgs(args)
	env := map[string]string{}
	for _, name := range credentials {
		value := os.Getenv(name)
		if value == "" {
			fmt.Fprintf(os.Stderr, "%s: the environment variable %s is not set\n", prog, name)
			return 2
		}
		env[name] = value
	}
	base := os.Getenv("GATEWAY_URL")
	if base == "" {
		base = "http://127.0.0.1:8000"
	}
	url := strings.TrimSuffix(base, "/") + deletionsPath

	// The body, built once as compact JSON bytes; every attempt hashes and sends these bytes.
	var body bytes.Buffer
	body.WriteString("{")
	if len(ids) > 0 {
		body.WriteString(`"ids":`)
		body.Write(jsonStrings(ids))
	}
	if len(externalIDs) > 0 {
		if len(ids) > 0 {
			body.WriteString(",")
		}
		body.WriteString(`"externalIds":`)
		body.Write(jsonStrings(externalIDs))
	}
	body.WriteString("}")
	payload := body.Bytes()
	if key == "" {
		key = newKey()
	}
	fmt.Fprintf(os.Stderr, "idempotency-key: %s\n", key)

	client := &http.Client{
		Timeout: 60 * time.Second,
		// The response body is printed exactly as received: ask for no transparent decompression.
		Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, DisableCompression: true},
		// A redirect would re-send (or drop) the signed body: report it instead of following it.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	var status int
	var reply []byte
	var parsed answer
	code := ""
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		// Unix time in milliseconds, fresh on every attempt, and so is the signature.
		timestamp := strconv.FormatInt(time.Now().UnixMilli(), 10)
		message := stringToSign(
			"POST", deletionsPath, "",
			env["PARTNER_CLIENT_ID"], env["STORE_CLIENT_ID"], env["STORE_TOKEN"],
			timestamp, bodySha256(payload),
		)
		signature := sign(env["PARTNER_SECRET"], message)
		if verbose {
			fmt.Fprintf(os.Stderr,
				"stringToSign (line 6, the store token, masked as AUTH_002 masks it):\n%s\n"+
					"bodyLength: %d\nbodySha256: %s\nx-timestamp: %s\nx-signature: %s\n",
				masked(message, env["STORE_TOKEN"]), len(payload), bodySha256(payload), timestamp, signature)
		}

		request, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(payload))
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: the request to %s failed: %v\n", prog, url, err)
			return 1
		}
		request.Header.Set("content-type", "application/json")
		request.Header.Set("x-partner-client-id", env["PARTNER_CLIENT_ID"])
		request.Header.Set("x-store-client-id", env["STORE_CLIENT_ID"])
		request.Header.Set("x-store-token", env["STORE_TOKEN"])
		request.Header.Set("x-timestamp", timestamp)
		request.Header.Set("x-signature", signature)
		request.Header.Set("idempotency-key", key)
		response, err := client.Do(request)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: the request to %s failed: %v\n", prog, url, err)
			return 1
		}
		reply, err = io.ReadAll(response.Body)
		response.Body.Close()
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: the request to %s failed: %v\n", prog, url, err)
			return 1
		}
		status = response.StatusCode
		fmt.Fprintf(os.Stderr, "HTTP %d\n", status)
		parsed = answer{}
		code = ""
		if json.Unmarshal(reply, &parsed) == nil && parsed.Error != nil {
			code = parsed.Error.Code
		}
		if !retriedCodes[code] || attempt == maxAttempts {
			break
		}
		wait, err := strconv.Atoi(strings.TrimSpace(response.Header.Get("retry-after")))
		if err != nil || wait < 0 {
			wait = 1 // seconds; one when absent
		}
		fmt.Fprintf(os.Stderr, "%s: retry %d of %d in %d s, signed anew, same idempotency-key and body\n",
			code, attempt, maxAttempts-1, wait)
		time.Sleep(time.Duration(wait) * time.Second)
	}
	// The verdict on standard error first, then the body as received (it ends with no newline).
	if retriedCodes[code] {
		fmt.Fprintf(os.Stderr, "%s: giving up after %d attempts\n", code, maxAttempts)
	}
	exitStatus := 0
	if status < 200 || status >= 300 {
		exitStatus = 1
	} else if parsed.Data != nil && parsed.Data.Summary != nil && parsed.Data.Summary.Failed != nil &&
		*parsed.Data.Summary.Failed > 0 {
		// Processed, but not everything was deleted: data.summary.failed says so.
		fmt.Fprintf(os.Stderr, "%d of %d entries not deleted (see data.errors)\n",
			*parsed.Data.Summary.Failed, parsed.Data.Summary.Total)
		exitStatus = 3
	}
	os.Stdout.Write(reply)
	return exitStatus
}

// --- vectors mode ------------------------------------------------------------------------------

var fields = []string{
	"expect", "method", "path", "query", "partnerClientId", "storeClientId", "storeToken",
	"timestamp", "body", "bodySha256", "stringToSign", "signature",
}

// firstDifference returns the first line (1-based) where two strings to sign differ, or 0. Line 6
// is no difference when the expected one is the store token masked, as AUTH_002 shows it.
func firstDifference(expected, built, token string) int {
	want := strings.Split(expected, "\n")
	got := strings.Split(built, "\n")
	for line := 1; line <= len(want) || line <= len(got); line++ {
		if line > len(want) || line > len(got) {
			return line
		}
		a := want[line-1]
		if a != got[line-1] && !(line == 6 && a == maskToken(token)) {
			return line
		}
	}
	return 0
}

// checkCase returns what is wrong with one vector case (nothing when it passes).
func checkCase(raw map[string]json.RawMessage) []string {
	var problems []string
	c := map[string]string{}
	for _, field := range fields {
		var value string
		data, ok := raw[field]
		if !ok || json.Unmarshal(data, &value) != nil {
			problems = append(problems, fmt.Sprintf("missing %q", field))
			continue
		}
		c[field] = value
	}
	var secrets []string
	if data, ok := raw["secrets"]; !ok || json.Unmarshal(data, &secrets) != nil || len(secrets) == 0 {
		problems = append(problems, `"secrets" is not a list of strings`)
	}
	if len(problems) > 0 {
		return problems
	}

	bodyHash := bodySha256([]byte(c["body"]))
	if bodyHash != c["bodySha256"] {
		problems = append(problems, fmt.Sprintf("bodySha256 is %s, the body hashes to %s", c["bodySha256"], bodyHash))
	}

	message := stringToSign(c["method"], c["path"], c["query"], c["partnerClientId"], c["storeClientId"],
		c["storeToken"], c["timestamp"], bodyHash)
	if line := firstDifference(c["stringToSign"], message, c["storeToken"]); line > 0 {
		problems = append(problems, fmt.Sprintf("stringToSign differs from the one built from the inputs at line %d", line))
	}

	signature := []byte(strings.ToLower(c["signature"]))
	matched := -1
	for index, secret := range secrets {
		if hmac.Equal([]byte(sign(secret, message)), signature) && matched < 0 {
			matched = index
		}
	}
	switch c["expect"] {
	case "valid":
		if matched < 0 {
			problems = append(problems, fmt.Sprintf("signature matches none of the %d secrets", len(secrets)))
		}
	case "invalid":
		if matched >= 0 {
			problems = append(problems, fmt.Sprintf("signature matches secrets[%d] but the case expects invalid", matched))
		}
	default:
		problems = append(problems, fmt.Sprintf("expect is %q, not valid or invalid", c["expect"]))
	}
	return problems
}

func checkVectors(file string) int {
	var document struct {
		Cases *[]json.RawMessage `json:"cases"`
	}
	data, err := os.ReadFile(file)
	if err == nil {
		err = json.Unmarshal(data, &document)
		if err == nil && document.Cases == nil {
			err = fmt.Errorf(`no "cases" array`)
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: cannot read %s: %v\n", prog, file, err)
		return 2
	}
	passed, failed := 0, 0
	var out strings.Builder
	for index, item := range *document.Cases {
		var raw map[string]json.RawMessage
		if json.Unmarshal(item, &raw) != nil || raw == nil {
			raw = map[string]json.RawMessage{} // not an object: every field is missing
		}
		var name string
		if json.Unmarshal(raw["name"], &name) != nil {
			name = fmt.Sprintf("case %d", index+1)
		}
		if problems := checkCase(raw); len(problems) > 0 {
			failed++
			fmt.Fprintf(&out, "FAIL %s: %s\n", name, strings.Join(problems, "; "))
		} else {
			passed++
			fmt.Fprintf(&out, "ok %s\n", name)
		}
	}
	fmt.Fprintf(&out, "%d passed, %d failed\n", passed, failed)
	os.Stdout.WriteString(out.String())
	if failed > 0 {
		return 1
	}
	return 0
}

func main() {
	args := os.Args[1:]
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		usage()
	}
	if args[0] == "--vectors" {
		if len(args) != 2 {
			usage()
		}
		os.Exit(checkVectors(args[1]))
	}
	os.Exit(deleteProducts(args))
}
