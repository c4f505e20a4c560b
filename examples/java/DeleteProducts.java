// Delete products through the Partner Catalog Gateway: a signed POST, from Java 17.
//
//   java DeleteProducts.java [-v] [--idempotency-key KEY] ID ... [-e EXTERNAL_ID ...]
//                                      sign and send one deletion request (retried if need be)
//   java DeleteProducts.java --vectors FILE   check a signing vector file, send nothing
//
// A single source file, standard library only (java.net.http, javax.crypto, java.security); the
// vectors mode carries its own small JSON parser. See README.md beside it.

import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.math.BigDecimal;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.Charset;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.UUID;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

public final class DeleteProducts {
    static final String DELETIONS_PATH = "/api/v1/partner/stores/products/deletions";
    static final String[] CREDENTIALS = {"PARTNER_CLIENT_ID", "PARTNER_SECRET", "STORE_CLIENT_ID", "STORE_TOKEN"};
    static final String PROG = "DeleteProducts.java";
    static final HexFormat HEX = HexFormat.of(); // lowercase

    // Standard output and error as UTF-8, whatever the locale says.
    static final PrintStream OUT = new PrintStream(new FileOutputStream(FileDescriptor.out), false, StandardCharsets.UTF_8);
    static final PrintStream ERR = new PrintStream(new FileOutputStream(FileDescriptor.err), true, StandardCharsets.UTF_8);

    /** Thrown for a command line that does not make sense: usage on standard error, exit 2. */
    static final class UsageError extends RuntimeException {
        private static final long serialVersionUID = 1L;

        UsageError() {
            super(null, null, false, false);
        }
    }

    // --- signing -------------------------------------------------------------------------------

    /** Lowercase hex SHA-256 of the raw body bytes. */
    static String bodySha256(byte[] body) {
        try {
            return HEX.formatHex(MessageDigest.getInstance("SHA-256").digest(body));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The string to sign: eight lines joined by LF, no trailing newline. */
    static String stringToSign(String method, String path, String query, String partnerClientId,
            String storeClientId, String storeToken, String timestamp, String bodyHash) {
        return String.join("\n", method.toUpperCase(Locale.ROOT), path, query, partnerClientId,
                storeClientId, storeToken, timestamp, bodyHash);
    }

    /** Lowercase hex HMAC-SHA256 of the message (UTF-8), keyed with the UTF-8 bytes of the secret. */
    static String sign(String secret, String message) {
        byte[] key = secret.getBytes(StandardCharsets.UTF_8);
        // SecretKeySpec refuses an empty key; HMAC pads short keys with zero bytes, so an empty
        // key and a single zero byte are the same key.
        if (key.length == 0) key = new byte[1];
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(key, "HmacSHA256"));
            return HEX.formatHex(mac.doFinal(message.getBytes(StandardCharsets.UTF_8)));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The first message along the chain of causes (an HttpClient ConnectException has none). */
    static String describe(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t.getMessage() != null && !t.getMessage().isEmpty()) return t.getMessage();
        }
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof java.net.ConnectException) return "could not connect (connection refused?)";
        }
        return e.toString();
    }

    // --- live mode -----------------------------------------------------------------------------

    /** A JSON string literal: quotes, backslashes and control characters escaped, the rest as is. */
    static String jsonString(String value) {
        StringBuilder sb = new StringBuilder(value.length() + 2).append('"');
        for (int i = 0; i < value.length(); i++) {
            char c = value.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\b' -> sb.append("\\b");
                case '\f' -> sb.append("\\f");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                default -> {
                    if (c < 0x20) sb.append(String.format("\\u%04x", (int) c));
                    else sb.append(c);
                }
            }
        }
        return sb.append('"').toString();
    }

    static String jsonArray(List<String> values) {
        List<String> items = new ArrayList<>();
        for (String value : values) items.add(jsonString(value));
        return "[" + String.join(",", items) + "]";
    }

    // Answers worth sending again, signed anew with the same idempotency-key and body bytes.
    static final List<String> RETRIED_CODES = List.of("RATE_001", "SYS_001", "IDEM_002");
    static final int MAX_ATTEMPTS = 4; // the first attempt and at most three retries

    /**
     * The store token as the gateway's AUTH_002 shows it: the first four characters of a token
     * longer than eight kept, every other character a star.
     */
    static String maskToken(String token) {
        int keep = token.length() > 8 ? 4 : 0;
        return token.substring(0, keep) + "*".repeat(token.length() - keep);
    }

    /** The string to sign with line 6, the store token, masked. */
    static String masked(String message, String token) {
        String[] lines = message.split("\n", -1);
        lines[5] = maskToken(token);
        return String.join("\n", lines);
    }

    static boolean retried(String code) {
        return code != null && RETRIED_CODES.contains(code);
    }

    /** The member at this path of a parsed JSON answer, or null. */
    static Object member(Object value, String... path) {
        for (String key : path) {
            if (!(value instanceof Map<?, ?> map)) return null;
            value = map.get(key);
        }
        return value;
    }

    static Object parseAnswer(byte[] answer) {
        try {
            return Json.parse(new String(answer, StandardCharsets.UTF_8));
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    static int deleteProducts(String[] args) {
        List<String> ids = new ArrayList<>();
        List<String> externalIds = new ArrayList<>();
        boolean verbose = false;
        String key = null;
        for (int i = 0; i < args.length; i++) {
            String arg = args[i];
            if (arg.equals("-e")) {
                if (i + 1 >= args.length) throw new UsageError();
                externalIds.add(args[++i]);
            } else if (arg.equals("-v") || arg.equals("--verbose")) {
                verbose = true;
            } else if (arg.equals("--idempotency-key")) {
                if (i + 1 >= args.length || args[i + 1].isEmpty()) throw new UsageError();
                key = args[++i];
            } else if (arg.equals("--")) {
                ids.addAll(Arrays.asList(args).subList(i + 1, args.length));
                break;
            } else if (arg.startsWith("-") && !arg.equals("-")) {
                throw new UsageError();
            } else {
                ids.add(arg);
            }
        }
        if (ids.isEmpty() && externalIds.isEmpty()) throw new UsageError();

        Map<String, String> env = new LinkedHashMap<>();
        for (String name : CREDENTIALS) {
            String value = Platform.getenv(name);
            if (value == null || value.isEmpty()) {
                ERR.println(PROG + ": the environment variable " + name + " is not set");
                return 2;
            }
            env.put(name, value);
        }
        String base = Platform.getenv("GATEWAY_URL");
        if (base == null || base.isEmpty()) base = "http://127.0.0.1:8000";
        String url = (base.endsWith("/") ? base.substring(0, base.length() - 1) : base) + DELETIONS_PATH;

        // The body, built once as compact JSON bytes; every attempt hashes and sends these bytes.
        List<String> members = new ArrayList<>();
        if (!ids.isEmpty()) members.add("\"ids\":" + jsonArray(ids));
        if (!externalIds.isEmpty()) members.add("\"externalIds\":" + jsonArray(externalIds));
        byte[] body = ("{" + String.join(",", members) + "}").getBytes(StandardCharsets.UTF_8);
        if (key == null) key = UUID.randomUUID().toString();
        ERR.println("idempotency-key: " + key);

        HttpClient client = HttpClient.newBuilder()
                .version(HttpClient.Version.HTTP_1_1) // no h2c upgrade attempt on plain http
                .followRedirects(HttpClient.Redirect.NEVER) // never re-send the signed body elsewhere
                .connectTimeout(Duration.ofSeconds(10))
                .build();
        HttpResponse<byte[]> response = null;
        Object parsed = null;
        String code = null;
        for (int attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
            // Unix time in milliseconds, fresh on every attempt, and so is the signature.
            String timestamp = Long.toString(System.currentTimeMillis());
            String message = stringToSign("POST", DELETIONS_PATH, "", env.get("PARTNER_CLIENT_ID"),
                    env.get("STORE_CLIENT_ID"), env.get("STORE_TOKEN"), timestamp, bodySha256(body));
            String signature = sign(env.get("PARTNER_SECRET"), message);
            if (verbose) {
                ERR.println("stringToSign (line 6, the store token, masked as AUTH_002 masks it):");
                ERR.println(masked(message, env.get("STORE_TOKEN")));
                ERR.println("bodyLength: " + body.length);
                ERR.println("bodySha256: " + bodySha256(body));
                ERR.println("x-timestamp: " + timestamp);
                ERR.println("x-signature: " + signature);
            }
            try {
                HttpRequest request = HttpRequest.newBuilder(URI.create(url))
                        .timeout(Duration.ofSeconds(60))
                        .header("content-type", "application/json")
                        .header("x-partner-client-id", env.get("PARTNER_CLIENT_ID"))
                        .header("x-store-client-id", env.get("STORE_CLIENT_ID"))
                        .header("x-store-token", env.get("STORE_TOKEN"))
                        .header("x-timestamp", timestamp)
                        .header("x-signature", signature)
                        .header("idempotency-key", key)
                        .POST(HttpRequest.BodyPublishers.ofByteArray(body))
                        .build();
                response = client.send(request, HttpResponse.BodyHandlers.ofByteArray());
            } catch (IOException | IllegalArgumentException e) {
                ERR.println(PROG + ": the request to " + url + " failed: " + describe(e));
                return 1;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                ERR.println(PROG + ": the request to " + url + " was interrupted");
                return 1;
            }
            ERR.println("HTTP " + response.statusCode());
            parsed = parseAnswer(response.body());
            code = member(parsed, "error", "code") instanceof String s ? s : null;
            if (!retried(code) || attempt == MAX_ATTEMPTS) break;
            String header = response.headers().firstValue("retry-after").orElse("").trim();
            int wait = header.matches("[0-9]{1,9}") ? Integer.parseInt(header) : 1; // seconds; one when absent
            ERR.println(code + ": retry " + attempt + " of " + (MAX_ATTEMPTS - 1) + " in " + wait
                    + " s, signed anew, same idempotency-key and body");
            try {
                Thread.sleep(wait * 1000L);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return 1;
            }
        }
        // The verdict on standard error first, then the body as received (it ends with no newline).
        if (retried(code)) ERR.println(code + ": giving up after " + MAX_ATTEMPTS + " attempts");
        int status = response.statusCode() >= 200 && response.statusCode() < 300 ? 0 : 1;
        // Processed, but was everything deleted? data.summary.failed says.
        if (status == 0 && member(parsed, "data", "summary", "failed") instanceof BigDecimal failed
                && failed.signum() > 0) {
            ERR.println(failed + " of " + member(parsed, "data", "summary", "total")
                    + " entries not deleted (see data.errors)");
            status = 3;
        }
        byte[] answer = response.body();
        OUT.write(answer, 0, answer.length);
        OUT.flush();
        return status;
    }

    // --- vectors mode --------------------------------------------------------------------------

    static final String[] FIELDS = {"expect", "method", "path", "query", "partnerClientId", "storeClientId",
            "storeToken", "timestamp", "body", "bodySha256", "stringToSign", "signature"};

    /**
     * The first line (1-based) where two strings to sign differ, or 0. Line 6 is no difference
     * when the expected one is the store token masked, as an AUTH_002 answer shows it.
     */
    static int firstDifference(String expected, String built, String token) {
        String[] want = expected.split("\n", -1);
        String[] got = built.split("\n", -1);
        for (int line = 1; line <= Math.max(want.length, got.length); line++) {
            if (line > want.length || line > got.length) return line;
            String a = want[line - 1];
            if (!a.equals(got[line - 1]) && !(line == 6 && a.equals(maskToken(token)))) return line;
        }
        return 0;
    }

    /** What is wrong with one vector case (nothing when it passes). */
    static List<String> checkCase(Map<String, Object> c) {
        List<String> problems = new ArrayList<>();
        for (String field : FIELDS) {
            if (!(c.get(field) instanceof String)) problems.add("missing \"" + field + "\"");
        }
        List<String> secrets = new ArrayList<>();
        if (c.get("secrets") instanceof List<?> list) {
            for (Object secret : list) {
                if (secret instanceof String s) secrets.add(s);
                else secrets = null;
                if (secrets == null) break;
            }
        } else {
            secrets = null;
        }
        if (secrets == null || secrets.isEmpty()) problems.add("\"secrets\" is not a list of strings");
        if (!problems.isEmpty()) return problems;

        String bodyHash = bodySha256(((String) c.get("body")).getBytes(StandardCharsets.UTF_8));
        if (!bodyHash.equals(c.get("bodySha256"))) {
            problems.add("bodySha256 is " + c.get("bodySha256") + ", the body hashes to " + bodyHash);
        }

        String message = stringToSign((String) c.get("method"), (String) c.get("path"), (String) c.get("query"),
                (String) c.get("partnerClientId"), (String) c.get("storeClientId"), (String) c.get("storeToken"),
                (String) c.get("timestamp"), bodyHash);
        int line = firstDifference((String) c.get("stringToSign"), message, (String) c.get("storeToken"));
        if (line > 0) problems.add("stringToSign differs from the one built from the inputs at line " + line);

        byte[] signature = ((String) c.get("signature")).toLowerCase(Locale.ROOT).getBytes(StandardCharsets.UTF_8);
        int matched = -1;
        for (int i = 0; i < secrets.size(); i++) {
            byte[] computed = sign(secrets.get(i), message).getBytes(StandardCharsets.UTF_8);
            if (MessageDigest.isEqual(computed, signature) && matched < 0) matched = i;
        }
        String expect = (String) c.get("expect");
        if (expect.equals("valid")) {
            if (matched < 0) problems.add("signature matches none of the " + secrets.size() + " secrets");
        } else if (expect.equals("invalid")) {
            if (matched >= 0) problems.add("signature matches secrets[" + matched + "] but the case expects invalid");
        } else {
            problems.add("expect is " + jsonString(expect) + ", not valid or invalid");
        }
        return problems;
    }

    static int checkVectors(String file) {
        List<?> cases;
        try {
            byte[] raw = Files.readAllBytes(Path.of(file));
            String text = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(raw))
                    .toString();
            Object document = Json.parse(text);
            if (!(document instanceof Map<?, ?> map) || !(map.get("cases") instanceof List<?> list)) {
                throw new IOException("no \"cases\" array");
            }
            cases = list;
        } catch (CharacterCodingException e) {
            ERR.println(PROG + ": cannot read " + file + ": not UTF-8 text");
            return 2;
        } catch (NoSuchFileException e) {
            ERR.println(PROG + ": cannot read " + file + ": no such file");
            return 2;
        } catch (FileSystemException e) {
            ERR.println(PROG + ": cannot read " + file + ": " + (e.getReason() != null ? e.getReason() : e));
            return 2;
        } catch (IOException | RuntimeException e) {
            ERR.println(PROG + ": cannot read " + file + ": " + describe(e));
            return 2;
        }
        int passed = 0;
        int failed = 0;
        for (int i = 0; i < cases.size(); i++) {
            @SuppressWarnings("unchecked")
            Map<String, Object> c = cases.get(i) instanceof Map<?, ?> m ? (Map<String, Object>) m : Map.of();
            Object name = c.get("name");
            if (name == null) name = "case " + (i + 1);
            else if (!(name instanceof String)) name = Json.write(name);
            List<String> problems = checkCase(c);
            if (problems.isEmpty()) {
                passed++;
                OUT.println("ok " + name);
            } else {
                failed++;
                OUT.println("FAIL " + name + ": " + String.join("; ", problems));
            }
        }
        OUT.println(passed + " passed, " + failed + " failed");
        OUT.flush();
        return failed > 0 ? 1 : 0;
    }

    // --- entry point ---------------------------------------------------------------------------

    public static void main(String[] argv) {
        String[] args = Platform.args(argv);
        int status;
        try {
            if (args.length == 0 || args[0].equals("-h") || args[0].equals("--help")) throw new UsageError();
            if (args[0].equals("--vectors")) {
                if (args.length != 2) throw new UsageError();
                status = checkVectors(args[1]);
            } else {
                status = deleteProducts(args);
            }
        } catch (UsageError e) {
            ERR.println("usage: " + PROG + " [-v] [--idempotency-key KEY] ID ... [-e EXTERNAL_ID ...]");
            ERR.println("       " + PROG + " --vectors FILE");
            status = 2;
        }
        OUT.flush();
        System.exit(status);
    }

    // --- a small, strict JSON parser (RFC 8259) ------------------------------------------------

    /**
     * Objects become LinkedHashMap (a repeated key: the last one wins), arrays ArrayList, strings
     * String (escapes decoded; a \\uXXXX surrogate pair becomes the one code point it encodes),
     * numbers BigDecimal, true/false Boolean, null null.
     */
    static final class Json {
        private static final int MAX_DEPTH = 512;
        private final String s;
        private int pos;
        private int depth;

        private Json(String s) {
            this.s = s;
        }

        static Object parse(String text) throws IOException {
            Json parser = new Json(text);
            parser.skipWhitespace();
            Object value = parser.value();
            parser.skipWhitespace();
            if (parser.pos != text.length()) throw parser.error("unexpected data after the JSON value");
            return value;
        }

        private IOException error(String what) {
            int line = 1;
            int column = 1;
            for (int i = 0; i < pos && i < s.length(); i++) {
                if (s.charAt(i) == '\n') {
                    line++;
                    column = 1;
                } else {
                    column++;
                }
            }
            return new IOException("invalid JSON: " + what + " at line " + line + " column " + column);
        }

        private void skipWhitespace() {
            while (pos < s.length()) {
                char c = s.charAt(pos);
                if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
                pos++;
            }
        }

        private Object value() throws IOException {
            if (pos >= s.length()) throw error("unexpected end of input");
            char c = s.charAt(pos);
            switch (c) {
                case '{':
                    return object();
                case '[':
                    return array();
                case '"':
                    return string();
                case 't':
                    return literal("true", Boolean.TRUE);
                case 'f':
                    return literal("false", Boolean.FALSE);
                case 'n':
                    return literal("null", null);
                default:
                    if (c == '-' || (c >= '0' && c <= '9')) return number();
                    throw error("unexpected character '" + c + "'");
            }
        }

        private Object literal(String word, Object result) throws IOException {
            if (!s.startsWith(word, pos)) throw error("unexpected character '" + s.charAt(pos) + "'");
            pos += word.length();
            return result;
        }

        private void enter() throws IOException {
            if (++depth > MAX_DEPTH) throw error("nested too deeply");
            pos++; // the opening bracket
            skipWhitespace();
        }

        private Map<String, Object> object() throws IOException {
            enter();
            Map<String, Object> map = new LinkedHashMap<>();
            if (pos < s.length() && s.charAt(pos) == '}') {
                pos++;
                depth--;
                return map;
            }
            while (true) {
                if (pos >= s.length() || s.charAt(pos) != '"') throw error("expected a string key");
                String key = string();
                skipWhitespace();
                expect(':');
                skipWhitespace();
                map.put(key, value());
                skipWhitespace();
                if (pos < s.length() && s.charAt(pos) == ',') {
                    pos++;
                    skipWhitespace();
                    continue;
                }
                expect('}');
                depth--;
                return map;
            }
        }

        private List<Object> array() throws IOException {
            enter();
            List<Object> list = new ArrayList<>();
            if (pos < s.length() && s.charAt(pos) == ']') {
                pos++;
                depth--;
                return list;
            }
            while (true) {
                list.add(value());
                skipWhitespace();
                if (pos < s.length() && s.charAt(pos) == ',') {
                    pos++;
                    skipWhitespace();
                    continue;
                }
                expect(']');
                depth--;
                return list;
            }
        }

        private void expect(char c) throws IOException {
            if (pos >= s.length() || s.charAt(pos) != c) throw error("expected '" + c + "'");
            pos++;
        }

        private String string() throws IOException {
            pos++; // the opening quote
            StringBuilder sb = new StringBuilder();
            while (true) {
                if (pos >= s.length()) throw error("unterminated string");
                char c = s.charAt(pos++);
                if (c == '"') return sb.toString();
                if (c < 0x20) {
                    pos--;
                    throw error("control character in a string");
                }
                if (c != '\\') {
                    sb.append(c); // a literal astral character arrives as its two UTF-16 units
                    continue;
                }
                if (pos >= s.length()) throw error("unterminated string");
                char e = s.charAt(pos++);
                switch (e) {
                    case '"' -> sb.append('"');
                    case '\\' -> sb.append('\\');
                    case '/' -> sb.append('/');
                    case 'b' -> sb.append('\b');
                    case 'f' -> sb.append('\f');
                    case 'n' -> sb.append('\n');
                    case 'r' -> sb.append('\r');
                    case 't' -> sb.append('\t');
                    case 'u' -> {
                        char unit = hex4();
                        // A high surrogate followed by an escaped low surrogate is one code point;
                        // appending both UTF-16 units is exactly that code point in a Java String.
                        sb.append(unit);
                        if (Character.isHighSurrogate(unit) && s.startsWith("\\u", pos)) {
                            int save = pos;
                            pos += 2;
                            char low = hex4();
                            if (Character.isLowSurrogate(low)) sb.append(low);
                            else pos = save; // not a pair: decode the next escape on its own
                        }
                    }
                    default -> {
                        pos--;
                        throw error("invalid escape '\\" + e + "'");
                    }
                }
            }
        }

        private char hex4() throws IOException {
            if (pos + 4 > s.length()) throw error("truncated \\u escape");
            int value = 0;
            for (int i = 0; i < 4; i++) {
                int digit = Character.digit(s.charAt(pos + i), 16);
                if (digit < 0 || s.charAt(pos + i) > 'f') throw error("invalid \\u escape");
                value = value * 16 + digit;
            }
            pos += 4;
            return (char) value;
        }

        private BigDecimal number() throws IOException {
            int start = pos;
            if (s.charAt(pos) == '-') pos++;
            if (pos < s.length() && s.charAt(pos) == '0') {
                pos++;
            } else if (!digits()) {
                throw error("invalid number");
            }
            if (pos < s.length() && s.charAt(pos) == '.') {
                pos++;
                if (!digits()) throw error("invalid number");
            }
            if (pos < s.length() && (s.charAt(pos) == 'e' || s.charAt(pos) == 'E')) {
                pos++;
                if (pos < s.length() && (s.charAt(pos) == '+' || s.charAt(pos) == '-')) pos++;
                if (!digits()) throw error("invalid number");
            }
            try {
                return new BigDecimal(s.substring(start, pos));
            } catch (NumberFormatException e) {
                throw error("number out of range");
            }
        }

        private boolean digits() {
            int start = pos;
            while (pos < s.length() && s.charAt(pos) >= '0' && s.charAt(pos) <= '9') pos++;
            return pos > start;
        }

        /** Compact JSON text of a parsed value (used to show a non-string case name). */
        static String write(Object value) {
            if (value == null) return "null";
            if (value instanceof String str) return jsonString(str);
            if (value instanceof Map<?, ?> map) {
                List<String> items = new ArrayList<>();
                for (Map.Entry<?, ?> entry : map.entrySet()) {
                    items.add(jsonString((String) entry.getKey()) + ":" + write(entry.getValue()));
                }
                return "{" + String.join(",", items) + "}";
            }
            if (value instanceof List<?> list) {
                List<String> items = new ArrayList<>();
                for (Object item : list) items.add(write(item));
                return "[" + String.join(",", items) + "]";
            }
            return value.toString();
        }
    }

    // --- arguments and environment as UTF-8 ----------------------------------------------------

    /**
     * Java decodes the command line and the environment with the locale's charset: under a C or
     * POSIX locale (an empty environment, many containers) every non-ASCII byte becomes U+FFFD and
     * an external id such as "café" would be sent wrong. On Linux the raw bytes are in /proc/self;
     * they are decoded as UTF-8 instead, but only when decoding them the JVM's way gives back
     * exactly what the JVM handed over (so they are the same values) and they are valid UTF-8.
     */
    static final class Platform {
        private static final Charset NATIVE = nativeCharset();

        private static Charset nativeCharset() {
            try {
                return Charset.forName(System.getProperty("sun.jnu.encoding", "UTF-8"));
            } catch (RuntimeException e) {
                return StandardCharsets.UTF_8;
            }
        }

        private static boolean needed() {
            return !NATIVE.equals(StandardCharsets.UTF_8);
        }

        private static List<byte[]> procEntries(String file) {
            List<byte[]> entries = new ArrayList<>();
            try {
                byte[] raw = Files.readAllBytes(Path.of("/proc/self", file));
                int start = 0;
                for (int i = 0; i < raw.length; i++) {
                    if (raw[i] == 0) {
                        entries.add(Arrays.copyOfRange(raw, start, i));
                        start = i + 1;
                    }
                }
            } catch (IOException | RuntimeException e) {
                entries.clear();
            }
            return entries;
        }

        /** The UTF-8 reading of raw, when raw is what the JVM decoded into decoded; else decoded. */
        private static String utf8(byte[] raw, String decoded) {
            if (!new String(raw, NATIVE).equals(decoded)) return decoded;
            try {
                return StandardCharsets.UTF_8.newDecoder()
                        .onMalformedInput(CodingErrorAction.REPORT)
                        .onUnmappableCharacter(CodingErrorAction.REPORT)
                        .decode(ByteBuffer.wrap(raw))
                        .toString();
            } catch (CharacterCodingException e) {
                return decoded;
            }
        }

        static String[] args(String[] argv) {
            if (!needed()) return argv;
            List<byte[]> cmdline = procEntries("cmdline");
            if (cmdline.size() < argv.length) return argv;
            // The program's own arguments are the last ones of the process's command line.
            List<byte[]> tail = cmdline.subList(cmdline.size() - argv.length, cmdline.size());
            String[] result = new String[argv.length];
            for (int i = 0; i < argv.length; i++) {
                if (!new String(tail.get(i), NATIVE).equals(argv[i])) return argv; // not the same list
                result[i] = utf8(tail.get(i), argv[i]);
            }
            return result;
        }

        static String getenv(String name) {
            String value = System.getenv(name);
            if (value == null || !needed()) return value;
            byte[] prefix = (name + "=").getBytes(StandardCharsets.UTF_8);
            for (byte[] entry : procEntries("environ")) {
                if (entry.length >= prefix.length
                        && Arrays.equals(entry, 0, prefix.length, prefix, 0, prefix.length)) {
                    return utf8(Arrays.copyOfRange(entry, prefix.length, entry.length), value);
                }
            }
            return value;
        }
    }
}
