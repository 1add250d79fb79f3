# Shared by scripts/dovecot-fixture, cyrus-fixture and courier-fixture (sourced, not run).

# make_test_tls DIR: a throwaway CA (DIR/ca.pem) and a server certificate for localhost,
# 127.0.0.1 and ::1 signed by it (DIR/server.pem, DIR/server.key); kept when present.
make_test_tls() {
  local t=$1
  mkdir -p "$t"
  [ -s "$t/server.pem" ] && return 0
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=mailmirror test CA" \
    -keyout "$t/ca.key" -out "$t/ca.pem" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$t/server.key" -out "$t/server.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' > "$t/server.ext"
  openssl x509 -req -in "$t/server.csr" -CA "$t/ca.pem" -CAkey "$t/ca.key" -CAcreateserial \
    -days 30 -sha256 -extfile "$t/server.ext" -out "$t/server.pem" 2>/dev/null
  chmod 600 "$t"/*.key
  chmod 644 "$t/ca.pem" "$t/server.pem"
}

# listening PORT: whether something listens on TCP PORT.
listening() { ss -Htln 2>/dev/null | awk '{print $4}' | grep -q ":$1\$"; }

# unpack_debs CACHE PACKAGE...: `apt-get download`s the packages (never installs them:
# cyrus-imapd and courier-imap would remove Dovecot) and unpacks them with dpkg -x into
# CACHE/root, once; CACHE/.complete marks a finished unpack.
unpack_debs() {
  local cache=$1; shift
  [ -e "$cache/.complete" ] && return 0
  # Two fixtures starting at once unpack once: the second waits for the first.
  mkdir -p "$(dirname "$cache")"
  exec 8>"$cache.lock"
  flock 8
  if [ -e "$cache/.complete" ]; then exec 8>&-; return 0; fi
  command -v apt-get >/dev/null || { echo "apt-get is needed to download ${*}" >&2; return 1; }
  rm -rf "$cache"; mkdir -p "$cache/debs" "$cache/root"
  chmod 777 "$cache/debs"   # apt's download sandbox user writes here
  if ! (cd "$cache/debs" && apt-get download -q "$@" >"$cache/download.log" 2>&1); then
    echo "apt-get download $* failed (run apt-get update?): $(tail -3 "$cache/download.log")" >&2
    exec 8>&-
    return 1
  fi
  local d
  for d in "$cache"/debs/*.deb; do dpkg-deb -x "$d" "$cache/root"; done
  touch "$cache/.complete"
  exec 8>&-
}

# stop_pid PIDFILE: TERM the process named in PIDFILE, KILL it after 5 s.
stop_pid() {
  local f=$1 pid
  [ -s "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}
