#!/usr/bin/env bash
# Delete products through the Partner Catalog Gateway: a signed POST, with bash, curl and openssl.
#
#   bash delete-products.sh [-v] [--idempotency-key KEY] ID ... [-e EXTERNAL_ID ...]
#                                          sign and send one deletion request (retried if need be)
#   bash delete-products.sh --vectors FILE   check a signing vector file, send nothing
#
# Needs only bash, curl, openssl, coreutils and POSIX awk. See README.md beside it.
set -euo pipefail
export LC_ALL=C # bytes, not characters, everywhere (tr, awk, ${var//...})

DELETIONS_PATH=/api/v1/partner/stores/products/deletions
PROG=${0##*/}

usage() {
  printf 'usage: %s [-v] [--idempotency-key KEY] ID ... [-e EXTERNAL_ID ...]\n' "$PROG" >&2
  printf '       %s --vectors FILE\n' "$PROG" >&2
  exit 2
}

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# --- signing helpers: every one works on files or stdin, so the bytes are exact ---------------

sha256_hex() { # sha256_hex < bytes: lowercase hex SHA-256
  local out
  out=$(openssl dgst -sha256 -r) || return 1
  printf '%s' "${out%% *}"
}

hmac_hex() { # hmac_hex KEY_FILE < message: lowercase hex HMAC-SHA256, keyed with the file's bytes
  # The key goes in as hex, so any byte (a quote, a colon, a leading dash, UTF-8) is safe.
  # An empty key is the same HMAC key as one zero byte (HMAC pads keys with zeros), and openssl
  # refuses an empty hexkey.
  local key out
  key=$(od -An -v -tx1 <"$1" | tr -d ' \n')
  out=$(openssl dgst -sha256 -mac HMAC -macopt "hexkey:${key:-00}" -r) || return 1
  printf '%s' "${out%% *}"
}

# The string to sign: eight lines joined by LF, no trailing newline (docs/signing.md). Each argument
# is a file holding the exact bytes of that line; the method is upper-cased.
string_to_sign() { # METHOD PATH QUERY PARTNER STORE TOKEN TIMESTAMP BODY_HASH (files) > bytes
  tr 'a-z' 'A-Z' <"$1"
  local f
  for f in "${@:2}"; do
    printf '\n'
    cat "$f"
  done
}

# --- live mode ---------------------------------------------------------------------------------

json_string() { # json_string VALUE: VALUE as a JSON string literal (UTF-8 kept as it is)
  local s=$1 c u code
  s=${s//"\\"/"\\\\"}
  s=${s//'"'/'\"'}
  s=${s//$'\b'/'\b'}
  s=${s//$'\f'/'\f'}
  s=${s//$'\n'/'\n'}
  s=${s//$'\r'/'\r'}
  s=${s//$'\t'/'\t'}
  for code in {1..31}; do
    printf -v c "\\$(printf '%03o' "$code")"
    if [[ $s == *"$c"* ]]; then
      printf -v u '\\u%04x' "$code"
      s=${s//"$c"/"$u"}
    fi
  done
  printf '"%s"' "$s"
}

json_array() { # json_array VALUE...: a compact JSON array of strings
  local sep='' v
  printf '['
  for v in "$@"; do
    printf '%s' "$sep"
    json_string "$v"
    sep=,
  done
  printf ']'
}

mask_token() { # mask_token TOKEN: the token as the gateway's AUTH_002 shows it
  local token=$1 keep=0 stars
  if ((${#token} > 8)); then keep=4; fi
  printf -v stars '%*s' $((${#token} - keep)) ''
  printf '%s%s' "${token:0:keep}" "${stars// /*}"
}

new_key() { # a random UUID (version 4), from /dev/urandom
  local h
  h=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  printf '%s-%s-4%s-%x%s-%s' "${h:0:8}" "${h:8:4}" "${h:13:3}" $((0x${h:16:1} & 3 | 8)) \
    "${h:17:3}" "${h:20:12}"
}

# Answers worth sending again, signed anew with the same idempotency-key and body bytes.
RETRIED_CODES=' RATE_001 SYS_001 IDEM_002 '
MAX_ATTEMPTS=4 # the first attempt and at most three retries

delete_products() {
  local ids=() external_ids=() verbose='' key=''
  while (($#)); do
    case $1 in
      -e)
        (($# >= 2)) || usage
        external_ids+=("$2")
        shift 2
        ;;
      -v | --verbose)
        verbose=1
        shift
        ;;
      --idempotency-key)
        (($# >= 2)) && [[ -n $2 ]] || usage
        key=$2
        shift 2
        ;;
      --)
        shift
        ids+=("$@")
        break
        ;;
      -?*) usage ;;
      *)
        ids+=("$1")
        shift
        ;;
    esac
  done
  ((${#ids[@]} + ${#external_ids[@]})) || usage

  local name
  for name in PARTNER_CLIENT_ID PARTNER_SECRET STORE_CLIENT_ID STORE_TOKEN; do
    if [[ -z ${!name:-} ]]; then
      printf '%s: the environment variable %s is not set\n' "$PROG" "$name" >&2
      exit 2
    fi
  done
  local url=${GATEWAY_URL:-http://127.0.0.1:8000}
  url=${url%/}$DELETIONS_PATH

  # The body, built once as compact JSON; every attempt hashes and sends these exact bytes.
  {
    printf '{'
    if ((${#ids[@]})); then
      printf '"ids":'
      json_array "${ids[@]}"
    fi
    if ((${#ids[@]} && ${#external_ids[@]})); then printf ','; fi
    if ((${#external_ids[@]})); then
      printf '"externalIds":'
      json_array "${external_ids[@]}"
    fi
    printf '}'
  } >"$TMP/body"
  [[ -n $key ]] || key=$(new_key)
  printf 'idempotency-key: %s\n' "$key" >&2

  printf 'POST' >"$TMP/1"
  printf '%s' "$DELETIONS_PATH" >"$TMP/2"
  : >"$TMP/3" # no query
  printf '%s' "$PARTNER_CLIENT_ID" >"$TMP/4"
  printf '%s' "$STORE_CLIENT_ID" >"$TMP/5"
  printf '%s' "$STORE_TOKEN" >"$TMP/6"
  mask_token "$STORE_TOKEN" >"$TMP/6-masked"
  sha256_hex <"$TMP/body" >"$TMP/8"
  printf '%s' "$PARTNER_SECRET" >"$TMP/key"

  local attempt status answer code='' wait timestamp signature
  for ((attempt = 1; attempt <= MAX_ATTEMPTS; attempt++)); do
    timestamp=$(date +%s%3N) # Unix time in milliseconds (GNU date), fresh on every attempt
    [[ $timestamp =~ ^[0-9]+$ ]] || timestamp=$(($(date +%s) * 1000)) # a date without %N
    printf '%s' "$timestamp" >"$TMP/7"
    string_to_sign "$TMP"/{1,2,3,4,5,6,7,8} >"$TMP/sts"
    signature=$(hmac_hex "$TMP/key" <"$TMP/sts")
    if [[ -n $verbose ]]; then
      {
        printf 'stringToSign (line 6, the store token, masked as AUTH_002 masks it):\n'
        string_to_sign "$TMP"/{1,2,3,4,5,6-masked,7,8}
        printf '\nbodyLength: %s\n' "$(wc -c <"$TMP/body" | tr -d ' ')"
        printf 'bodySha256: %s\n' "$(cat "$TMP/8")"
        printf 'x-timestamp: %s\nx-signature: %s\n' "$timestamp" "$signature"
      } >&2
    fi

    if ! status=$(curl -sS -o "$TMP/response" -D "$TMP/headers" -w '%{http_code}' -X POST \
      -H 'content-type: application/json' \
      -H "x-partner-client-id: $PARTNER_CLIENT_ID" \
      -H "x-store-client-id: $STORE_CLIENT_ID" \
      -H "x-store-token: $STORE_TOKEN" \
      -H "x-timestamp: $timestamp" \
      -H "x-signature: $signature" \
      -H "idempotency-key: $key" \
      -H 'expect:' \
      --data-binary "@$TMP/body" \
      "$url"); then
      printf '%s: the request to %s failed\n' "$PROG" "$url" >&2
      exit 1
    fi
    printf 'HTTP %s\n' "$status" >&2
    answer=$(cat "$TMP/response")
    code=''
    if [[ $answer =~ \"error\":\{\"code\":\"([A-Z0-9_]+)\" ]]; then code=${BASH_REMATCH[1]}; fi
    if [[ -n $code && $RETRIED_CODES == *" $code "* ]] && ((attempt < MAX_ATTEMPTS)); then
      wait=$(awk -F: 'tolower($1) == "retry-after" { gsub(/[ \t\r]/, "", $2); print $2 }' \
        "$TMP/headers")
      [[ $wait =~ ^[0-9]+$ ]] || wait=1 # seconds; one second when absent
      printf '%s: retry %d of %d in %d s, signed anew, same idempotency-key and body\n' \
        "$code" "$attempt" $((MAX_ATTEMPTS - 1)) "$wait" >&2
      sleep "$wait"
      continue
    fi
    break
  done
  # The verdict on standard error first, then the body as received (it ends with no newline).
  if [[ -n $code && $RETRIED_CODES == *" $code "* ]]; then
    printf '%s: giving up after %d attempts\n' "$code" "$MAX_ATTEMPTS" >&2
  fi
  local exit_status=0
  [[ $status == 2[0-9][0-9] ]] || exit_status=1
  # Processed, but was everything deleted? data.summary.failed says.
  if ((exit_status == 0)) && [[ $answer =~ \"failed\":([0-9]+) ]] && ((BASH_REMATCH[1] > 0)); then
    local failed=${BASH_REMATCH[1]} total='?'
    if [[ $answer =~ \"total\":([0-9]+) ]]; then total=${BASH_REMATCH[1]}; fi
    printf '%s of %s entries not deleted (see data.errors)\n' "$failed" "$total" >&2
    exit_status=3
  fi
  cat "$TMP/response"
  exit "$exit_status"
}

# --- vectors mode ------------------------------------------------------------------------------

# Reads a JSON vector file (pretty-printed or not) and prints one record per line, tab-separated:
#   C                  the top-level "cases" array starts
#   B                  a case object starts
#   V  KEY  VALUE      a string member of the case (one V line per element of an array member)
#   E                  the case object ends
# VALUE is printf %b text: JSON escapes are turned into %b escapes (\\, \n, \t, \0ooo for each
# UTF-8 byte of a \uXXXX escape), and all other bytes are kept, so `printf '%b'` gives back the
# exact UTF-8 bytes of the string. A file that is not well-formed makes awk exit 3.
# JSON strings never span lines, so each line is split on its unescaped quotes: after escaped
# backslashes (\001) and escaped quotes (\002) are set aside, every " left is a string delimiter.
VECTOR_AWK='
function bad(why) { printf "line %d: %s\n", NR, why > "/dev/stderr"; failed = 1; exit 3 }
function hexval(h,   i, v) {
  v = 0
  for (i = 1; i <= length(h); i++) v = v * 16 + index("0123456789abcdef", tolower(substr(h, i, 1))) - 1
  return v
}
function octal(b) { return BS "0" sprintf("%03o", b) }
function utf8(cp) {
  if (cp >= 55296 && cp < 57344) cp = 65533 # a lone surrogate: U+FFFD
  if (cp < 128) return octal(cp)
  if (cp < 2048) return octal(192 + int(cp / 64)) octal(128 + cp % 64)
  if (cp < 65536) return octal(224 + int(cp / 4096)) octal(128 + int(cp / 64) % 64) octal(128 + cp % 64)
  return octal(240 + int(cp / 262144)) octal(128 + int(cp / 4096) % 64) octal(128 + int(cp / 64) % 64) octal(128 + cp % 64)
}
function decode(s,   out, cp, lo, n, i, parts) {
  gsub(/\002/, "\"", s)
  gsub(/\\\//, "/", s)
  out = s
  gsub(/\\u[0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f]/, "", out)
  if (out ~ /\\[^bfnrt]/ || out ~ /\\$/) bad("invalid escape in a string")
  out = ""
  while (match(s, /\\u[0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f]/)) {
    out = out substr(s, 1, RSTART - 1)
    cp = hexval(substr(s, RSTART + 2, 4))
    s = substr(s, RSTART + 6)
    if (cp >= 55296 && cp < 56320 && match(s, /^\\u[dD][c-fC-F][0-9A-Fa-f][0-9A-Fa-f]/)) {
      lo = hexval(substr(s, 3, 4))
      cp = 65536 + (cp - 55296) * 1024 + (lo - 56320)
      s = substr(s, 7)
    }
    out = out utf8(cp)
  }
  s = out s
  n = split(s, parts, "\001")
  out = parts[1]
  for (i = 2; i <= n; i++) out = out BS BS parts[i]
  return out
}
function in_case() { return depth >= 3 && stack[1] == "{" && key[1] == "cases" && stack[2] == "[" && stack[3] == "{" }
function structure(s,   i, c) {
  for (i = 1; i <= length(s); i++) {
    c = substr(s, i, 1)
    if (c == "{" || c == "[") {
      stack[++depth] = c
      key[depth] = ""
      expect_key[depth] = (c == "{")
      if (depth == 2 && c == "[" && stack[1] == "{" && key[1] == "cases") { print "C"; cases = 1 }
      if (depth == 3 && in_case()) print "B"
    } else if (c == "}" || c == "]") {
      if (depth < 1 || (c == "}") != (stack[depth] == "{")) bad("unbalanced " c)
      if (depth == 3 && in_case()) print "E"
      depth--
    } else if (c == ",") {
      if (depth < 1) bad("unexpected ,")
      if (stack[depth] == "{") expect_key[depth] = 1
    } else if (c == ":") {
      if (depth < 1 || stack[depth] != "{") bad("unexpected :")
      expect_key[depth] = 0
    } else if (c !~ /[ \t\r\n]/ && c !~ /[-+.0-9a-zA-Z]/) {
      bad("unexpected character " c)
    }
  }
}
function str_token(s) {
  if (depth >= 1 && stack[depth] == "{" && expect_key[depth]) { key[depth] = s; return }
  if (depth == 3 && in_case()) print "V\t" key[3] "\t" decode(s)
  else if (depth == 4 && in_case() && stack[4] == "[") print "V\t" key[3] "\t" decode(s)
}
BEGIN { BS = sprintf("%c", 92) }
{
  line = $0
  gsub(/\\\\/, "\001", line)
  gsub(/\\"/, "\002", line)
  n = split(line, tok, "\"")
  if (n > 0 && n % 2 == 0) bad("unterminated string")
  for (t = 1; t <= n; t++) if (t % 2) structure(tok[t]); else str_token(tok[t])
}
END {
  if (failed) exit 3
  if (depth != 0) { printf "unbalanced brackets at the end\n" > "/dev/stderr"; exit 3 }
  if (!cases) { printf "no \"cases\" array\n" > "/dev/stderr"; exit 3 }
}'

FIELDS='expect method path query partnerClientId storeClientId storeToken timestamp body
  bodySha256 stringToSign signature'

# Checks one case, whose fields are in the variables F_<field> (printf %b text; HAVE lists the
# ones present) and its secrets in the array SECRETS. Prints "ok NAME" or "FAIL NAME: ..." and
# returns 1 on failure. (No associative arrays: this runs on bash 3.2 too.)
check_case() {
  local n=$1 name="case $n" problems=() field i
  if [[ $HAVE == *" name "* ]]; then name=$F_name; fi
  for field in $FIELDS; do
    [[ $HAVE == *" $field "* ]] || problems+=("missing \"$field\"")
  done
  ((${#SECRETS[@]})) || problems+=('"secrets" is not a list of strings')
  if ((${#problems[@]} == 0)); then
    local dir=$TMP/case
    rm -rf "$dir" && mkdir "$dir"
    printf '%b' "$F_body" >"$dir/body"
    local body_hash
    body_hash=$(sha256_hex <"$dir/body")
    [[ $body_hash == "$F_bodySha256" ]] ||
      problems+=("bodySha256 is $F_bodySha256, the body hashes to $body_hash")

    i=0
    for field in method path query partnerClientId storeClientId storeToken timestamp; do
      field=F_$field
      printf '%b' "${!field}" >"$dir/$((++i))"
    done
    printf '%s' "$body_hash" >"$dir/8"
    string_to_sign "$dir"/{1,2,3,4,5,6,7,8} >"$dir/sts"
    printf '%b' "$F_stringToSign" >"$dir/expected"
    # Line 6 is no difference when the expected one is the token masked, as AUTH_002 shows it.
    local token
    printf -v token '%b' "$F_storeToken"
    mask_token "$token" >"$dir/6"
    string_to_sign "$dir"/{1,2,3,4,5,6,7,8} >"$dir/sts-masked"
    local where line
    if where=$(cmp "$dir/expected" "$dir/sts" 2>&1); then
      :
    elif [[ $where =~ line\ ([0-9]+) ]]; then
      line=${BASH_REMATCH[1]}
      if ((line == 6)) && where=$(cmp "$dir/expected" "$dir/sts-masked" 2>&1); then
        line=''
      elif ((line == 6)) && [[ $where =~ line\ ([0-9]+) ]] && ((BASH_REMATCH[1] > 6)); then
        line=${BASH_REMATCH[1]}
      fi
      [[ -z $line ]] ||
        problems+=("stringToSign differs from the one built from the inputs at line $line")
    else
      problems+=("stringToSign differs from the one built from the inputs ($where)")
    fi

    local signature matched=''
    signature=$(printf '%b' "$F_signature" | tr 'A-F' 'a-f')
    for i in "${!SECRETS[@]}"; do
      printf '%b' "${SECRETS[i]}" >"$dir/key"
      if [[ $(hmac_hex "$dir/key" <"$dir/sts") == "$signature" ]]; then
        matched=$i
        break
      fi
    done
    if [[ $F_expect == valid && -z $matched ]]; then
      problems+=("signature matches none of the ${#SECRETS[@]} secrets")
    elif [[ $F_expect == invalid && -n $matched ]]; then
      problems+=("signature matches secrets[$matched] but the case expects invalid")
    elif [[ $F_expect != valid && $F_expect != invalid ]]; then
      problems+=("expect is \"$F_expect\", not valid or invalid")
    fi
  fi
  if ((${#problems[@]} == 0)); then
    printf 'ok %b\n' "$name"
    return 0
  fi
  local joined
  joined=$(printf '%s; ' "${problems[@]}")
  printf 'FAIL %b: %s\n' "$name" "${joined%; }"
  return 1
}

check_vectors() {
  local file=$1
  if [[ ! -f $file || ! -r $file ]]; then
    printf '%s: cannot read %s\n' "$PROG" "$file" >&2
    exit 2
  fi
  if ! awk "$VECTOR_AWK" "$file" >"$TMP/records"; then
    printf '%s: %s is not a vector file\n' "$PROG" "$file" >&2
    exit 2
  fi
  local passed=0 failed=0 n=0 kind key value HAVE SECRETS F_name F_expect F_method F_path F_query \
    F_partnerClientId F_storeClientId F_storeToken F_timestamp F_body F_bodySha256 F_stringToSign \
    F_signature
  while IFS=$'\t' read -r kind key value; do
    case $kind in
      B)
        HAVE=' '
        SECRETS=()
        ;;
      V)
        case $key in
          secrets) SECRETS+=("$value") ;;
          name | expect | method | path | query | partnerClientId | storeClientId | storeToken | \
            timestamp | body | bodySha256 | stringToSign | signature)
            printf -v "F_$key" '%s' "$value"
            HAVE="$HAVE$key "
            ;;
        esac
        ;;
      E)
        if check_case $((++n)); then ((++passed)); else ((++failed)); fi
        ;;
    esac
  done <"$TMP/records"
  printf '%d passed, %d failed\n' "$passed" "$failed"
  if ((failed)); then exit 1; fi
  exit 0
}

case ${1-} in
  '') usage ;;
  -h | --help)
    usage
    ;;
  --vectors)
    (($# == 2)) || usage
    check_vectors "$2"
    ;;
  *) delete_products "$@" ;;
esac
