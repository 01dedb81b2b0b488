#!/usr/bin/env bash
# Makes sure a Redis server answers on 127.0.0.1:6379 for the tests: uses the
# one that is running, else starts redis-server (installing Debian's package
# when it is missing and we are root), else fails saying what to do.
set -euo pipefail
ping() { (exec 3<>/dev/tcp/127.0.0.1/6379 && printf 'PING\r\n' >&3 && head -c 5 <&3 | grep -q PONG) 2>/dev/null; }
if ping; then exit 0; fi
if ! command -v redis-server >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "redis-server missing: installing Debian's redis-server package" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  else
    echo "No Redis on 127.0.0.1:6379 and no redis-server to start: install redis-server (as root: apt-get install redis-server) or start one." >&2
    exit 1
  fi
fi
echo "starting redis-server on 127.0.0.1:6379 for the tests" >&2
redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
for _ in $(seq 1 50); do ping && exit 0; sleep 0.1; done
echo "redis-server did not answer on 127.0.0.1:6379" >&2
exit 1
