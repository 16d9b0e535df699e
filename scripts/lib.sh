# Shared by scripts/up, scripts/test and .ci/run: make sure PostgreSQL, RabbitMQ (with its
# management plugin) and MailDev (the SMTP server whose inbox tests and people read) are running,
# installing what a fresh machine lacks. Idempotent: what already runs is left alone.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN_DIR="$ROOT/.run"
mkdir -p "$RUN_DIR/logs"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for_port() {
  local port=$1 what=$2 tries=${3:-120}
  for _ in $(seq "$tries"); do
    port_open "$port" && return 0
    sleep 0.5
  done
  echo "error: $what did not start listening on port $port" >&2
  return 1
}

apt_install() {
  if [ -z "${LOCKBRIDGE_APT_UPDATED:-}" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    export LOCKBRIDGE_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_postgres() {
  if ! command -v pg_ctlcluster >/dev/null; then
    say "installing PostgreSQL"
    apt_install postgresql
  fi
  if ! port_open 5432; then
    say "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start
    wait_for_port 5432 PostgreSQL
  fi
  # A whole-system test holds about 25 connections (each service's pool and listeners) and the
  # suite runs four at once, some with extra processes: the default of 100 is too few.
  local wanted=300
  local have
  have="$(psql -h 127.0.0.1 -U postgres -tAc 'SHOW max_connections')"
  if [ "$have" -lt "$wanted" ]; then
    say "raising PostgreSQL's max_connections from $have to $wanted (restarts it once)"
    psql -h 127.0.0.1 -U postgres -qc "ALTER SYSTEM SET max_connections = $wanted"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main restart
    wait_for_port 5432 PostgreSQL
  fi
}

ensure_rabbitmq() {
  if ! command -v rabbitmq-server >/dev/null; then
    say "installing RabbitMQ"
    apt_install rabbitmq-server
  fi
  if ! port_open 5672; then
    say "starting RabbitMQ"
    rabbitmq-server -detached
    wait_for_port 5672 RabbitMQ 240
  fi
  # Tests create a virtual host each through the management API.
  if ! port_open 15672; then
    say "enabling the RabbitMQ management plugin"
    rabbitmq-plugins enable rabbitmq_management rabbitmq_prometheus >/dev/null
    wait_for_port 15672 "RabbitMQ management" 120
  fi
}

ensure_maildev() {
  if ! port_open 1025 || ! port_open 1080; then
    if ! command -v maildev >/dev/null; then
      if ! command -v npm >/dev/null; then
        say "installing Node.js"
        apt_install nodejs npm
      fi
      say "installing MailDev"
      npm install -g --no-fund --no-audit maildev@3.0.0 >/dev/null
    fi
    say "starting MailDev (SMTP 127.0.0.1:1025, inbox http://127.0.0.1:1080)"
    nohup maildev --smtp 1025 --web 1080 --ip 127.0.0.1 >"$RUN_DIR/logs/maildev.log" 2>&1 &
    echo $! >"$RUN_DIR/maildev.pid"
    wait_for_port 1025 "MailDev SMTP"
    wait_for_port 1080 "MailDev web"
  fi
}

# The staff UI's tests drive Debian's headless Chromium through chromedriver (WebDriver).
ensure_browser() {
  if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    say "installing Chromium and chromedriver (the staff UI's browser tests)"
    apt_install chromium chromium-driver
  fi
}

ensure_promtool() {
  if ! command -v promtool >/dev/null 2>&1; then
    say "installing Prometheus's promtool (the alert rules' tests)"
    apt_install prometheus
  fi
}

ensure_services() {
  ensure_postgres
  ensure_rabbitmq
  ensure_maildev
}

# A target directory outside the clone keeps builds warm across clones (CI clones afresh).
default_target_dir() {
  if [ -n "${CARGO_TARGET_DIR:-}" ]; then
    echo "$CARGO_TARGET_DIR"
  elif [ -d /work ] && [ -w /work ]; then
    echo /work/target
  else
    echo "$HOME/.cache/lockbridge/target"
  fi
}
export CARGO_TARGET_DIR="$(default_target_dir)"
