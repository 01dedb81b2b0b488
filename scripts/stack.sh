#!/usr/bin/env bash
# stack.sh: a real Apache Kafka (KRaft) cluster plus a Confluent-compatible
# Schema Registry on loopback, built from Maven Central jars only (no Docker,
# no tarball), for integration and fault tests.
#
#   stack.sh up [--brokers 1|3] [--no-registry]
#                            start (or reuse) the stack; prints KEY=value lines on
#                            stdout, first KAFKA_BROKERS=... and SCHEMA_REGISTRY=...,
#                            then the secured listeners and what reaches them:
#                            KAFKA_SSL_BROKERS, KAFKA_SASL_SSL_BROKERS,
#                            KAFKA_SASL_PLAINTEXT_BROKERS, KAFKA_MTLS_BROKERS,
#                            KAFKA_CA_FILE, KAFKA_CLIENT_CERT_FILE, KAFKA_CLIENT_KEY_FILE,
#                            KAFKA_SASL_USER, KAFKA_SASL_PASSWORD
#                            so that:    out=$(stack.sh up) && eval "$out"
#   stack.sh down            stop everything this stack started, delete data dirs
#   stack.sh status          human-readable state; exit 0 only if all is healthy
#   stack.sh pid <node-id|registry>
#                            print the pid of one process (for kill -9 / SIGSTOP)
#   stack.sh start-node <node-id>
#                            restart one stopped/killed broker with its config and
#                            data and wait until it is back in the metadata
#   stack.sh fetch           only download the jars into the cache (CI warm-up)
#
# Environment (all optional):
#   LEADSCORER_KAFKA_CACHE  jar cache (default ${XDG_CACHE_HOME:-$HOME/.cache}/leadscorer/kafka-4.4.0)
#   STACK_DIR               run folder: configs, data, logs, pids (default $LEADSCORER_KAFKA_CACHE/run)
#   STACK_BROKERS           default for --brokers (1)
#   STACK_TIMEOUT           seconds to wait for readiness (default 120)
#   STACK_STOP_TIMEOUT      seconds between TERM and KILL on down (default 20)
#   KAFKA_JAVA              java for the brokers (default $JAVA_HOME/bin/java, else java; needs 17+)
#   KAFKA_HEAP_OPTS         default "-Xms512m -Xmx512m"
#   KAFKA_EXTRA_JVM_OPTS    appended to the broker JVM flags
#   KAFKA_EXTRA_PROPS       space-separated key=value lines appended to every server.properties
#   REGISTRY_JAVA           java for Apicurio (needs 21+; default: java on PATH if 21+,
#                           else the newest 21+ JDK under /usr/lib/jvm)
#   SCHEMA_REGISTRY_PORT    default 8081
#   SCHEMA_REGISTRY_CMD     HOOK: a command line that starts another Confluent-compatible
#                           registry in the foreground instead of Apicurio. It runs with
#                           KAFKA_BROKERS, SCHEMA_REGISTRY_HOST and SCHEMA_REGISTRY_PORT in
#                           its environment and must serve ${SCHEMA_REGISTRY_URL}/subjects.
#   SCHEMA_REGISTRY_URL     base URL the hook serves (default http://127.0.0.1:$SCHEMA_REGISTRY_PORT)
set -euo pipefail

readonly KAFKA_VERSION=4.4.0
# Kafka's POM leaves the SLF4J binding out (it is "releaseOnly" in build.gradle and
# only lands in the tarball). Kafka 4.x is on slf4j-api 1.7.36, so the binding is
# log4j-slf4j-impl (NOT log4j-slf4j2-impl), at the log4j-core version that
# kafka-server 4.4.0 pulls in (dependency:tree shows 2.25.5).
readonly LOG4J_VERSION=2.25.5
readonly APICURIO_VERSION=3.3.3
readonly DEP_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE_DIR=${LEADSCORER_KAFKA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/leadscorer/kafka-$KAFKA_VERSION}
STACK_DIR=${STACK_DIR:-$CACHE_DIR/run}
LIBS_DIR=$CACHE_DIR/libs
APICURIO_DIR=$CACHE_DIR/apicurio-registry-$APICURIO_VERSION
TIMEOUT=${STACK_TIMEOUT:-120}
STOP_TIMEOUT=${STACK_STOP_TIMEOUT:-20}
SR_PORT=${SCHEMA_REGISTRY_PORT:-8081}
SECURE_DIR=$STACK_DIR/secure
readonly SASL_USER=scorer

log() { printf 'stack: %s\n' "$*" >&2; }
die() { printf 'stack: ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- topology
# One node: the usual 9092/9093. Three nodes: distinct ports per node so that
# node N is always 1N092 (broker) / 1N093 (controller) and logs are readable;
# all below 32768, where Linux starts handing out clients' local ports (a
# client's connection once held 39092 and node 3 could not bind it).
# Every broker also has four secured client listeners, always on (inter-broker
# and controller traffic stays on PLAINTEXT):
#   1N094 SSL             TLS, no login
#   1N095 SASL_SSL        TLS and a login: SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN
#   1N096 SASL_PLAINTEXT  a login without TLS: SCRAM-SHA-256 or SCRAM-SHA-512 (no
#                         PLAIN: its password would cross in clear)
#   1N097 MTLS            SASL_SSL that also requires a client certificate
readonly SECURE_LISTENERS=(SSL SASL_SSL SASL_PLAINTEXT MTLS)
node_ids() { if [[ $1 == 1 ]]; then echo 1; else echo 1 2 3; fi; }
lport() { # <listener> <node> <brokers>
  local last
  case $1 in
    PLAINTEXT) last=2 ;; CONTROLLER) last=3 ;; SSL) last=4 ;; SASL_SSL) last=5 ;; SASL_PLAINTEXT) last=6 ;; MTLS) last=7 ;;
    *) die "unknown listener $1" ;;
  esac
  if [[ $3 == 1 ]]; then echo 909$last; else echo 1"$2"09$last; fi
}
bport() { lport PLAINTEXT "$1" "$2"; } # <node> <brokers>
cport() { lport CONTROLLER "$1" "$2"; }
bootstrap_of() { # <listener> <brokers>
  local n=$2 out="" id
  for id in $(node_ids "$n"); do out+="${out:+,}127.0.0.1:$(lport "$1" "$id" "$n")"; done
  echo "$out"
}
bootstrap_for() { bootstrap_of PLAINTEXT "$1"; }

# ---------------------------------------------------------------- java
java_major() { # <java binary> -> major version, or empty if it does not run
  "$1" -version 2>&1 | awk -F'"' '/version/ {split($2, v, "."); print (v[1] == "1" ? v[2] : v[1]); exit}'
}
kafka_java() {
  local j=${KAFKA_JAVA:-${JAVA_HOME:+$JAVA_HOME/bin/java}}
  j=${j:-java}
  command -v "$j" >/dev/null 2>&1 || die "java not found ($j); Kafka $KAFKA_VERSION needs Java 17+"
  local m; m=$(java_major "$j")
  [[ -n $m && $m -ge 17 ]] || die "Kafka $KAFKA_VERSION needs Java 17+, $j is '${m:-?}' (set KAFKA_JAVA)"
  echo "$j"
}
registry_java() {
  # Apicurio 3.3.3 is compiled for Java 21 (class file 65): Java 17 fails with
  # UnsupportedClassVersionError, so look for a 21+ JDK.
  local j m best="" bestm=0
  if [[ -n ${REGISTRY_JAVA:-} ]]; then
    m=$(java_major "$REGISTRY_JAVA")
    [[ -n $m && $m -ge 21 ]] || die "Apicurio $APICURIO_VERSION needs Java 21+, REGISTRY_JAVA=$REGISTRY_JAVA is '${m:-?}'"
    echo "$REGISTRY_JAVA"; return
  fi
  for j in "$(command -v java || true)" /usr/lib/jvm/*/bin/java; do
    [[ -n $j && -x $j ]] || continue
    m=$(java_major "$j"); [[ -n $m ]] || continue
    if (( m >= 21 && m > bestm )); then best=$j; bestm=$m; fi
  done
  [[ -n $best ]] || die "Apicurio $APICURIO_VERSION needs Java 21+ and none was found (set REGISTRY_JAVA, or use SCHEMA_REGISTRY_CMD)"
  echo "$best"
}

# ---------------------------------------------------------------- fetch (network, once)
mvn_quiet() { # mvn with its output in $CACHE_DIR/mvn.log, shown only on failure
  if ! mvn -B -ntp "$@" >"$CACHE_DIR/mvn.log" 2>&1; then
    log "mvn $* failed; tail of $CACHE_DIR/mvn.log:"
    grep -E 'ERROR|BUILD' "$CACHE_DIR/mvn.log" | tail -n 15 >&2
    return 1
  fi
}
fetch_kafka() {
  [[ -f $LIBS_DIR/.complete ]] && return 0
  command -v mvn >/dev/null || die "mvn not found: needed once to fetch Kafka $KAFKA_VERSION into $LIBS_DIR"
  log "fetching Kafka $KAFKA_VERSION jars with Maven into $LIBS_DIR (once)"
  mkdir -p "$CACHE_DIR"
  # A throwaway POM: the broker (kafka_2.13), the tools (TopicCommand,
  # ProducerPerformance, ...; the tarball's libs/ has them too) and the logging
  # binding the published POM leaves out.
  cat >"$CACHE_DIR/kafka-libs.pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>leadscorer.local</groupId><artifactId>kafka-libs</artifactId><version>$KAFKA_VERSION</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$LOG4J_VERSION</version></dependency>
  </dependencies>
</project>
EOF
  rm -rf "$LIBS_DIR.tmp"
  mvn_quiet -f "$CACHE_DIR/kafka-libs.pom.xml" "$DEP_PLUGIN:copy-dependencies" \
    -DincludeScope=runtime -DoutputDirectory="$LIBS_DIR.tmp" \
    || die "Maven could not fetch Kafka $KAFKA_VERSION (network or Maven Central unavailable?)"
  # Guard against a second SLF4J binding or an SLF4J 2 provider sneaking in.
  local n; n=$(find "$LIBS_DIR.tmp" -name 'log4j-slf4j*-impl-*.jar' -o -name 'slf4j-api-2*.jar' | wc -l)
  [[ -f $LIBS_DIR.tmp/log4j-slf4j-impl-$LOG4J_VERSION.jar && -f $LIBS_DIR.tmp/log4j-core-$LOG4J_VERSION.jar && $n == 1 ]] \
    || die "unexpected logging jars in $LIBS_DIR.tmp (expected exactly log4j-slf4j-impl/log4j-core $LOG4J_VERSION)"
  touch "$LIBS_DIR.tmp/.complete"
  rm -rf "$LIBS_DIR"; mv "$LIBS_DIR.tmp" "$LIBS_DIR"
}

fetch_apicurio() {
  [[ -f $APICURIO_DIR/.complete ]] && return 0
  command -v mvn >/dev/null || die "mvn not found: needed once to fetch Apicurio Registry $APICURIO_VERSION"
  log "fetching Apicurio Registry $APICURIO_VERSION (tar.gz:all, ~160 MB) with Maven into $APICURIO_DIR (once)"
  mkdir -p "$CACHE_DIR"
  rm -rf "$APICURIO_DIR.tmp"
  # The 'all' assembly is the Quarkus fast-jar (quarkus-run.jar + lib/). Only the
  # tar.gz is on Central (the zip is not).
  # unpack without a POM writes marker files under "./\${project.basedir}": run it in a scratch folder.
  local scratch; scratch=$(mktemp -d "$CACHE_DIR/.mvn.XXXXXX")
  (cd "$scratch" && mvn_quiet "$DEP_PLUGIN:unpack" \
      -Dartifact="io.apicurio:apicurio-registry-app:$APICURIO_VERSION:tar.gz:all" \
      -DoutputDirectory="$APICURIO_DIR.tmp") \
    || { rm -rf "$scratch"; die "Maven could not fetch io.apicurio:apicurio-registry-app:$APICURIO_VERSION:tar.gz:all"; }
  rm -rf "$scratch"
  [[ -f $APICURIO_DIR.tmp/quarkus-run.jar ]] || die "no quarkus-run.jar in the Apicurio archive"
  touch "$APICURIO_DIR.tmp/.complete"
  rm -rf "$APICURIO_DIR"; mv "$APICURIO_DIR.tmp" "$APICURIO_DIR"
}

# ---------------------------------------------------------------- process bookkeeping
# A pid file holds "<pid> <start-time>": the start time (field 22 of
# /proc/<pid>/stat) guards against a recycled pid after a crash or reboot,
# so we never signal a process we did not start.
proc_start() { awk '{print $22}' "/proc/$1/stat" 2>/dev/null || true; }
# A killed process can linger as a zombie until PID 1 reaps it (seconds, on
# this kind of machine): kill -0 still succeeds on it, so check the state.
alive() { local st; st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) && [[ -n $st && $st != Z && $st != X ]]; }
pid_of() { # <pidfile> -> pid if that very process is alive
  local f=$1 pid st
  [[ -f $f ]] || return 1
  read -r pid st <"$f" || return 1
  [[ -n ${pid:-} && -n ${st:-} && $(proc_start "$pid") == "$st" ]] && alive "$pid" || return 1
  echo "$pid"
}
launch() { # <pidfile> <logfile> <workdir> cmd... : start detached, record pid
  local pidf=$1 logf=$2 wd=$3; shift 3
  # setsid: own session, so a Ctrl-C or a CI job's process-group kill of the
  # caller does not take the stack down mid-test (down does it by pid).
  # All fds are redirected (and the lock fd 9 closed) so that
  # "$(stack.sh up)" returns instead of waiting for the children's stdout.
  (cd "$wd" && exec setsid "$@" </dev/null >>"$logf" 2>&1 9>&-) &
  local pid=$! st=""
  for _ in 1 2 3 4 5 6 7 8 9 10; do alive "$pid" && st=$(proc_start "$pid"); [[ -n $st ]] && break; sleep 0.1; done
  [[ -n $st ]] || { log "process for $pidf exited at once; tail of $logf:"; tail -n 30 "$logf" >&2; return 1; }
  echo "$pid $st" >"$pidf"
}
stop_pids() { # TERM all, wait up to STOP_TIMEOUT, then KILL what is left
  local pids=("$@") p left deadline=$((SECONDS + STOP_TIMEOUT))
  ((${#pids[@]})) || return 0
  kill -TERM "${pids[@]}" 2>/dev/null || true
  # A SIGSTOPped process (fault tests) never handles TERM: wake it up.
  kill -CONT "${pids[@]}" 2>/dev/null || true
  while :; do
    left=()
    for p in "${pids[@]}"; do alive "$p" && left+=("$p"); done
    ((${#left[@]})) || return 0
    if ((SECONDS >= deadline)); then
      log "still running after ${STOP_TIMEOUT}s, sending KILL to: ${left[*]}"
      kill -KILL "${left[@]}" 2>/dev/null || true
      sleep 0.5; return 0
    fi
    sleep 0.2
  done
}

# ---------------------------------------------------------------- probes
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
broker_count() { # <bootstrap> -> number of brokers in a real metadata response
  kcat -L -b "$1" -m 5 2>/dev/null | awk '/^ *[0-9]+ brokers:/ {print $1; exit}'
}
secured_answer() { # <brokers> <timeout-s> [node-id...]: every secured listener of the
  # nodes logs in a client and lists <brokers> brokers, each of which answers a
  # request of its own on it (scripts/ListenerProbe.java, Kafka's Java client: kcat
  # cannot log in with SCRAM to Kafka 4, see there); prints what did not on stderr
  local n=$1 t=$2 l id bs args=() java
  shift 2
  local ids=("$@"); ((${#ids[@]})) || read -ra ids <<<"$(node_ids "$n")"
  secure_ready || { log "no client settings in $SECURE_DIR"; return 1; }
  for l in "${SECURE_LISTENERS[@]}"; do
    bs=""; for id in "${ids[@]}"; do bs+="${bs:+,}127.0.0.1:$(lport "$l" "$id" "$n")"; done
    args+=("$l" "$bs" "$SECURE_DIR/$l.properties")
  done
  java=$(kafka_java)
  "$java" -Xmx128m -XX:TieredStopAtLevel=1 "-Dlog4j2.configurationFile=$STACK_DIR/probe-log4j2.properties" \
    -cp "$LIBS_DIR/*" "$SCRIPT_DIR/ListenerProbe.java" "$n" "$t" "${args[@]}" 9>&-
}
registry_url() { # the URL of the running stack's registry (recorded at start)
  cat "$STACK_DIR/registry.url" 2>/dev/null || new_registry_url
}
new_registry_url() {
  if [[ -n ${SCHEMA_REGISTRY_CMD:-} ]]; then
    echo "${SCHEMA_REGISTRY_URL:-http://127.0.0.1:$SR_PORT}"
  else
    echo "http://127.0.0.1:$SR_PORT/apis/ccompat/v7"
  fi
}
registry_ok() { curl -fsS -m 5 -o /dev/null "$1/subjects" 2>/dev/null; }

# ---------------------------------------------------------------- secured listeners
# A throwaway CA, made afresh by every 'up' that starts a stack, signs the
# brokers' certificate (127.0.0.1 and localhost) and one client certificate
# (for MTLS). PEM throughout: Kafka reads it as is (ssl.keystore.type=PEM), and
# so do Go and librdkafka. The SCRAM user is created at format time
# (StorageTool --add-scram) with a random password; PLAIN's user is listed in
# the JAAS lines of the TLS listeners that accept it. All of it lives in
# $SECURE_DIR, with a Kafka client properties file per listener.
make_secure() {
  local d=$SECURE_DIR days=365 ext who
  [[ -n $d && $d == "$STACK_DIR/secure" ]] || die "bad SECURE_DIR '$d'"
  rm -rf "$d"; mkdir -p "$d"; chmod 700 "$d"
  ext=$d/ext.cnf
  cat >"$ext" <<'CNF'
[req]
distinguished_name=dn
[dn]
[ca]
basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
[server]
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost
authorityKeyIdentifier=keyid
[client]
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth
authorityKeyIdentifier=keyid
CNF
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days "$days" \
    -subj "/CN=leadscorer stack CA" -keyout "$d/ca-key.pem" -out "$d/ca.pem" \
    -config "$ext" -extensions ca >"$d/openssl.log" 2>&1 \
    || { cat "$d/openssl.log" >&2; die "openssl could not make the stack's CA in $d"; }
  for who in server client; do
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$who" \
      -keyout "$d/$who-key.pem" -out "$d/$who.csr" -config "$ext" >>"$d/openssl.log" 2>&1 \
    && openssl x509 -req -in "$d/$who.csr" -CA "$d/ca.pem" -CAkey "$d/ca-key.pem" \
      -set_serial "0x$(openssl rand -hex 8)" -days "$days" -extfile "$ext" -extensions "$who" \
      -out "$d/$who-cert.pem" >>"$d/openssl.log" 2>&1 \
    || { cat "$d/openssl.log" >&2; die "openssl could not make the $who certificate in $d"; }
  done
  # Kafka's PEM key stores: the private key (PKCS#8, unencrypted) and the chain.
  cat "$d/server-key.pem" "$d/server-cert.pem" "$d/ca.pem" >"$d/server.pem"
  cat "$d/client-key.pem" "$d/client-cert.pem" "$d/ca.pem" >"$d/client.pem"
  rm -f "$d/server.csr" "$d/client.csr" "$d/ca-key.pem" "$d/openssl.log" "$ext"
  head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >"$d/sasl-password"
  [[ -s $d/sasl-password ]] || die "could not make the SASL password"
  chmod 600 "$d/ca.pem" "$d/server.pem" "$d/server-key.pem" "$d/server-cert.pem" \
    "$d/client.pem" "$d/client-key.pem" "$d/client-cert.pem" "$d/sasl-password"
  write_client_props
}
sasl_password() { cat "$SECURE_DIR/sasl-password"; }
write_client_props() { # Kafka client settings per secured listener, for the probe and
  # for Kafka's tools (--command-config $SECURE_DIR/<listener>.properties)
  local d=$SECURE_DIR l jaas
  jaas="org.apache.kafka.common.security.scram.ScramLoginModule required username=\"$SASL_USER\" password=\"$(sasl_password)\";"
  for l in "${SECURE_LISTENERS[@]}"; do
    {
      case $l in
        SSL) echo "security.protocol=SSL" ;;
        SASL_SSL) printf '%s\n' security.protocol=SASL_SSL sasl.mechanism=SCRAM-SHA-512 ;;
        SASL_PLAINTEXT) printf '%s\n' security.protocol=SASL_PLAINTEXT sasl.mechanism=SCRAM-SHA-256 ;;
        MTLS) printf '%s\n' security.protocol=SASL_SSL sasl.mechanism=SCRAM-SHA-256 \
          ssl.keystore.type=PEM "ssl.keystore.location=$d/client.pem" ;;
      esac
      [[ $l == SASL_PLAINTEXT ]] || printf '%s\n' ssl.truststore.type=PEM "ssl.truststore.location=$d/ca.pem"
      [[ $l == SSL ]] || echo "sasl.jaas.config=$jaas"
    } >"$d/$l.properties"
    chmod 600 "$d/$l.properties"
  done
}
secure_ready() { # the secured listeners' material is all there
  local f
  for f in ca.pem server.pem client.pem client-cert.pem client-key.pem sasl-password "${SECURE_LISTENERS[@]/%/.properties}"; do
    [[ -s $SECURE_DIR/$f ]] || return 1
  done
}

# ---------------------------------------------------------------- config
write_log4j() {
  # Console appender; launch() sends it to the node's log file. INFO keeps
  # "Kafka Server started" and election/fencing lines for post-mortems.
  cat >"$STACK_DIR/log4j2.properties" <<'EOF'
appender.out.type=Console
appender.out.name=OUT
appender.out.layout.type=PatternLayout
appender.out.layout.pattern=[%d] %p %m (%c)%n
rootLogger.level=INFO
rootLogger.appenderRef.out.ref=OUT
logger.request.name=kafka.request.logger
logger.request.level=WARN
EOF
  # Tools (StorageTool): warnings only, like Kafka's tools-log4j2.yaml.
  sed 's/^rootLogger.level=INFO/rootLogger.level=WARN/' "$STACK_DIR/log4j2.properties" >"$STACK_DIR/tools-log4j2.properties"
  # The listener probe: its own summary only (failed logins before ready are expected).
  sed 's/^rootLogger.level=INFO/rootLogger.level=OFF/' "$STACK_DIR/log4j2.properties" >"$STACK_DIR/probe-log4j2.properties"
}

write_node_config() { # <node-id> <brokers> <voters bootstrap>
  local id=$1 n=$2 voters=$3 rf misr listeners l
  if [[ $n == 1 ]]; then rf=1 misr=1; else rf=3 misr=2; fi
  listeners=PLAINTEXT://127.0.0.1:$(bport "$id" "$n"),CONTROLLER://127.0.0.1:$(cport "$id" "$n")
  for l in "${SECURE_LISTENERS[@]}"; do listeners+=,$l://127.0.0.1:$(lport "$l" "$id" "$n"); done
  mkdir -p "$STACK_DIR/node-$id"
  cat >"$STACK_DIR/node-$id/server.properties" <<EOF
# generated by stack.sh: combined broker+controller node $id of $n
process.roles=broker,controller
node.id=$id
# dynamic KRaft quorum (KIP-853), as in Kafka 4.x's stock server.properties
controller.quorum.bootstrap.servers=$voters
listeners=$listeners
advertised.listeners=$listeners
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,MTLS:SASL_SSL
log.dirs=$STACK_DIR/node-$id/data

# secured client listeners (see the top of stack.sh); TLS from the stack's throwaway CA
ssl.keystore.type=PEM
ssl.keystore.location=$SECURE_DIR/server.pem
ssl.truststore.type=PEM
ssl.truststore.location=$SECURE_DIR/ca.pem
listener.name.mtls.ssl.client.auth=required
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512,PLAIN
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$SASL_USER="$(sasl_password)";
listener.name.sasl_plaintext.sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.mtls.sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512,PLAIN
listener.name.mtls.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.mtls.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.mtls.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$SASL_USER="$(sasl_password)";

# nothing may rely on auto-creation: create topics explicitly (kadm)
auto.create.topics.enable=false
num.partitions=1
default.replication.factor=$rf
min.insync.replicas=$misr
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$misr
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$misr
# 50 partitions x RF3 is slow to create on first group/transaction use on 2 cores;
# 12 keeps coordinators spread over the nodes.
offsets.topic.num.partitions=12
transaction.state.log.num.partitions=12

# fast group timings for tests
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
group.consumer.min.session.timeout.ms=3000
group.consumer.session.timeout.ms=6000
group.consumer.min.heartbeat.interval.ms=500
group.consumer.heartbeat.interval.ms=1000
# abort transactions of a dead producer soon after transaction.timeout.ms (default 10 s scan)
transaction.abort.timed.out.transaction.cleanup.interval.ms=2000

# 2 cores: fewer threads than the defaults (3 network, 8 io, 10 background, 4 group coordinator)
num.network.threads=2
num.io.threads=4
background.threads=4
num.replica.fetchers=1
num.recovery.threads.per.data.dir=1
group.coordinator.threads=1
share.coordinator.threads=1
EOF
  chmod 600 "$STACK_DIR/node-$id/server.properties" # PLAIN's password
  # Test-specific overrides, e.g. KAFKA_EXTRA_PROPS="broker.session.timeout.ms=4000 broker.heartbeat.interval.ms=1000"
  # (later lines win in a .properties file).
  if [[ -n ${KAFKA_EXTRA_PROPS:-} ]]; then
    printf '\n# KAFKA_EXTRA_PROPS\n' >>"$STACK_DIR/node-$id/server.properties"
    tr ' ' '\n' <<<"$KAFKA_EXTRA_PROPS" | sed '/^$/d' >>"$STACK_DIR/node-$id/server.properties"
  fi
}

kafka_jvm_opts() { # <node-id>
  # The flags of Kafka's kafka-run-class.sh minus JMX, with a small fixed heap.
  # shellcheck disable=SC2206  # word splitting of the *_OPTS vars is intended
  local opts=(${KAFKA_HEAP_OPTS:--Xms512m -Xmx512m}
    -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
    -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -XX:+ExitOnOutOfMemoryError
    -Djava.awt.headless=true
    "-Dlog4j2.configurationFile=$STACK_DIR/log4j2.properties"
    "-Dkafka.logs.dir=$STACK_DIR/node-$1"
    ${KAFKA_EXTRA_JVM_OPTS:-})
  printf '%s\n' "${opts[@]}"
}

start_broker() { # <node-id>
  local id=$1 java opts
  java=$(kafka_java)
  mapfile -t opts < <(kafka_jvm_opts "$id")
  launch "$STACK_DIR/node-$id/kafka.pid" "$STACK_DIR/node-$id/kafka.log" "$STACK_DIR/node-$id" \
    "$java" "${opts[@]}" -cp "$LIBS_DIR/*" kafka.Kafka "$STACK_DIR/node-$id/server.properties"
}

random_id() { # a Kafka Uuid string (22 chars base64url), not starting with '-' (like Uuid.randomUuid)
  local u
  while :; do
    u=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
    [[ $u != -* ]] && { echo "$u"; return; }
  done
}

format_nodes() { # <brokers>
  local n=$1 java cid id flags=() initial="" pids=() rc=0 p
  java=$(kafka_java)
  cid=$(random_id); echo "$cid" >"$STACK_DIR/cluster.id"
  if [[ $n == 1 ]]; then
    flags=(--standalone)
  else
    # Same --initial-controllers on every node, one directory id per node.
    for id in $(node_ids "$n"); do
      random_id >"$STACK_DIR/node-$id/dir.id"
      initial+="${initial:+,}$id@127.0.0.1:$(cport "$id" "$n"):$(cat "$STACK_DIR/node-$id/dir.id")"
    done
    flags=(--initial-controllers "$initial")
  fi
  # The SCRAM user of the SASL listeners, in the bootstrap metadata of every node.
  local pw; pw=$(sasl_password)
  flags+=(--add-scram "SCRAM-SHA-256=[name=$SASL_USER,password=$pw]" --add-scram "SCRAM-SHA-512=[name=$SASL_USER,password=$pw]")
  # Format the nodes in parallel: each is a JVM start (~1-2 s on 2 cores).
  for id in $(node_ids "$n"); do
    "$java" -Xmx256m "-Dlog4j2.configurationFile=$STACK_DIR/tools-log4j2.properties" -cp "$LIBS_DIR/*" \
      kafka.tools.StorageTool format -t "$cid" -c "$STACK_DIR/node-$id/server.properties" "${flags[@]}" \
      >"$STACK_DIR/node-$id/format.log" 2>&1 9>&- &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  if ((rc)); then
    for id in $(node_ids "$n"); do log "format log of node $id:"; tail -n 20 "$STACK_DIR/node-$id/format.log" >&2; done
    return 1
  fi
}

start_registry() { # <bootstrap>
  local url logf=$STACK_DIR/registry/registry.log
  mkdir -p "$STACK_DIR/registry"
  url=$(new_registry_url)
  echo "$url" >"$STACK_DIR/registry.url"
  if [[ -n ${SCHEMA_REGISTRY_CMD:-} ]]; then
    # HOOK: the repository's own (Go) registry, or any Confluent-compatible one.
    log "starting schema registry via SCHEMA_REGISTRY_CMD: $SCHEMA_REGISTRY_CMD"
    KAFKA_BROKERS=$1 SCHEMA_REGISTRY_HOST=127.0.0.1 SCHEMA_REGISTRY_PORT=$SR_PORT \
      launch "$STACK_DIR/registry/registry.pid" "$logf" "$STACK_DIR/registry" \
      bash -c "exec $SCHEMA_REGISTRY_CMD"
  else
    local java; java=$(registry_java)
    log "starting Apicurio Registry $APICURIO_VERSION (in-memory H2) on 127.0.0.1:$SR_PORT with $java"
    # In-memory H2 (the default sql storage): schemas live as long as the process.
    # The management interface (health/metrics) defaults to 0.0.0.0:9000: keep it on loopback, off 9000.
    # Deletion flags: tests may DELETE subjects/versions, as Confluent's registry allows.
    # A small JDBC pool (default 20..100 connections) saves memory.
    QUARKUS_HTTP_HOST=127.0.0.1 QUARKUS_HTTP_PORT=$SR_PORT \
    QUARKUS_MANAGEMENT_HOST=127.0.0.1 QUARKUS_MANAGEMENT_PORT=$((SR_PORT + 1000)) \
    APICURIO_REST_DELETION_ARTIFACT_ENABLED=true \
    APICURIO_REST_DELETION_ARTIFACT_VERSION_ENABLED=true \
    APICURIO_REST_DELETION_GROUP_ENABLED=true \
    APICURIO_DATASOURCE_JDBC_INITIAL_SIZE=2 APICURIO_DATASOURCE_JDBC_MIN_SIZE=2 APICURIO_DATASOURCE_JDBC_MAX_SIZE=20 \
      launch "$STACK_DIR/registry/registry.pid" "$logf" "$STACK_DIR/registry" \
      "$java" -Xms128m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:+ExitOnOutOfMemoryError \
      "-Dleadscorer.stack.dir=$STACK_DIR" -jar "$APICURIO_DIR/quarkus-run.jar"
  fi
}

# ---------------------------------------------------------------- waits
wait_brokers() { # <brokers> [node-id...]: until each node answers a metadata request on
  # its own listener and lists all <brokers> (asking each node, not the cluster,
  # because a just-killed node stays registered until its broker session times out);
  # then until its secured listeners let a client log in and answer too
  local n=$1 deadline=$((SECONDS + TIMEOUT)) got id bs waiting=() nodes=()
  shift; if (($#)); then waiting=("$@"); else read -ra waiting <<<"$(node_ids "$n")"; fi
  nodes=("${waiting[@]}")
  while :; do
    local still=()
    for id in "${waiting[@]}"; do
      bs=127.0.0.1:$(bport "$id" "$n")
      got=$(broker_count "$bs" || true)
      [[ ${got:-0} == "$n" ]] || still+=("$id")
    done
    ((${#still[@]})) || break
    waiting=("${still[@]}")
    for id in "${waiting[@]}"; do
      pid_of "$STACK_DIR/node-$id/kafka.pid" >/dev/null || {
        log "Kafka node $id (127.0.0.1:$(bport "$id" "$n")) died during start-up; tail of $STACK_DIR/node-$id/kafka.log:"
        tail -n 40 "$STACK_DIR/node-$id/kafka.log" | cut -c1-300 >&2; return 1; }
    done
    if ((SECONDS >= deadline)); then
      for id in "${waiting[@]}"; do
        log "Kafka node $id did not answer metadata with $n broker(s) on 127.0.0.1:$(bport "$id" "$n") within ${TIMEOUT}s (last answer: ${got:-none}); tail of $STACK_DIR/node-$id/kafka.log:"
        tail -n 10 "$STACK_DIR/node-$id/kafka.log" | cut -c1-300 >&2
      done
      return 1
    fi
    sleep 0.5
  done
  # The secured listeners open with the PLAINTEXT one: normally one probe.
  secured_answer "$n" "$((deadline > SECONDS + 10 ? deadline - SECONDS : 10))" "${nodes[@]}" || {
    log "the secured listeners of node(s) ${nodes[*]} did not answer (above); see $STACK_DIR/node-*/kafka.log"
    return 1; }
}
wait_registry() {
  local url deadline=$((SECONDS + TIMEOUT)) logf=$STACK_DIR/registry/registry.log
  url=$(registry_url)
  while :; do
    registry_ok "$url" && return 0
    if ! pid_of "$STACK_DIR/registry/registry.pid" >/dev/null; then
      log "schema registry died during start-up; tail of $logf:"; tail -n 40 "$logf" >&2; return 1
    fi
    if ((SECONDS >= deadline)); then
      log "schema registry did not answer $url/subjects within ${TIMEOUT}s; tail of $logf:"
      tail -n 40 "$logf" >&2; return 1
    fi
    sleep 0.5
  done
}

# ---------------------------------------------------------------- state
our_pids() { # pids of live processes this stack started
  local f p
  for f in "$STACK_DIR"/node-*/kafka.pid "$STACK_DIR/registry/registry.pid"; do
    p=$(pid_of "$f") && echo "$p"
  done
  return 0
}
mode() { cat "$STACK_DIR/mode" 2>/dev/null || true; }
registry_mode() { cat "$STACK_DIR/registry.mode" 2>/dev/null || true; }
healthy() { # <brokers>: all our processes alive and answering
  local n=$1 id
  for id in $(node_ids "$n"); do pid_of "$STACK_DIR/node-$id/kafka.pid" >/dev/null || return 1; done
  [[ $(broker_count "$(bootstrap_for "$n")") == "$n" ]] || return 1
  # A stack started before the secured listeners existed has none: not reusable.
  secure_ready && secured_answer "$n" 15 2>/dev/null || return 1
  if [[ $(registry_mode) != off ]]; then
    pid_of "$STACK_DIR/registry/registry.pid" >/dev/null || return 1
    registry_ok "$(registry_url)" || return 1
  fi
}
print_env() { # the only stdout of 'up': KEY=value lines a shell can eval
  local n=$1 d=$SECURE_DIR
  echo "KAFKA_BROKERS=$(bootstrap_for "$n")"
  if [[ $(registry_mode) == off ]]; then echo "SCHEMA_REGISTRY="; else echo "SCHEMA_REGISTRY=$(registry_url)"; fi
  echo "KAFKA_SSL_BROKERS=$(bootstrap_of SSL "$n")"
  echo "KAFKA_SASL_SSL_BROKERS=$(bootstrap_of SASL_SSL "$n")"
  echo "KAFKA_SASL_PLAINTEXT_BROKERS=$(bootstrap_of SASL_PLAINTEXT "$n")"
  echo "KAFKA_MTLS_BROKERS=$(bootstrap_of MTLS "$n")"
  echo "KAFKA_CA_FILE=$d/ca.pem"
  echo "KAFKA_CLIENT_CERT_FILE=$d/client-cert.pem"
  echo "KAFKA_CLIENT_KEY_FILE=$d/client-key.pem"
  echo "KAFKA_SASL_USER=$SASL_USER"
  echo "KAFKA_SASL_PASSWORD=$(sasl_password)"
}

# ---------------------------------------------------------------- commands
fetch() { # <what...>: under a lock in the cache folder, which several run folders may share
  mkdir -p "$CACHE_DIR"
  local f
  { flock -w 1800 8 || die "another stack.sh is fetching into $CACHE_DIR"
    for f in "$@"; do "fetch_$f"; done
  } 8>"$CACHE_DIR/.fetch.lock"
}
cmd_fetch() { if [[ -n ${SCHEMA_REGISTRY_CMD:-} ]]; then fetch kafka; else fetch kafka apicurio; fi; }

cmd_up() {
  local n=${STACK_BROKERS:-1} reg=on
  while (($#)); do
    case $1 in
      --brokers) n=${2:-}; shift 2 ;;
      --brokers=*) n=${1#*=}; shift ;;
      --no-registry) reg=off; shift ;;
      *) die "up: unknown argument $1" ;;
    esac
  done
  [[ $n == 1 || $n == 3 ]] || die "--brokers must be 1 or 3"
  # The paths printed for eval must need no quoting.
  [[ $STACK_DIR == "$(printf '%q' "$STACK_DIR")" ]] || die "STACK_DIR must not hold spaces or shell metacharacters: $STACK_DIR"
  # kcat (Debian's package) is the readiness probe: an independent client;
  # openssl makes the secured listeners' certificates.
  local missing=() t
  for t in kcat openssl; do command -v "$t" >/dev/null || missing+=("$t"); done
  if ((${#missing[@]})); then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
      log "${missing[*]} missing: installing Debian's package(s)"
      apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2 \
        || die "installing ${missing[*]} failed"
    else
      die "${missing[*]} not found (apt-get install -y ${missing[*]}): kcat is the readiness probe, openssl makes the listeners' certificates"
    fi
  fi
  command -v curl >/dev/null || die "curl not found"

  # Reuse a stack that already answers.
  local cur; cur=$(mode)
  if [[ -n $cur ]] && healthy "$cur"; then
    if [[ $cur != "$n" ]]; then
      die "a $cur-broker stack is already running in $STACK_DIR; run 'stack.sh down' first"
    fi
    if [[ $reg == on && $(registry_mode) == off ]]; then
      die "the running stack has no registry; run 'stack.sh down' first"
    fi
    log "reusing the running $n-broker stack in $STACK_DIR"
    print_env "$n"; return 0
  fi
  # Anything left (partially alive or stale pid files): clean up first.
  if [[ -n $cur || -n $(our_pids) ]]; then
    log "found a stale or unhealthy stack in $STACK_DIR; cleaning it up"
    do_down
  fi

  # Fail fast on a missing JDK, before anything is formatted or started.
  kafka_java >/dev/null
  if [[ $reg == off || -n ${SCHEMA_REGISTRY_CMD:-} ]]; then fetch kafka; else registry_java >/dev/null; fetch kafka apicurio; fi

  local id p
  local l
  for id in $(node_ids "$n"); do
    for l in PLAINTEXT CONTROLLER "${SECURE_LISTENERS[@]}"; do
      p=$(lport "$l" "$id" "$n")
      port_open "$p" && die "port $p ($l of node $id) is already in use by a process this stack did not start"
    done
  done
  if [[ $reg == on ]] && port_open "$SR_PORT"; then
    die "port $SR_PORT (schema registry) is already in use by a process this stack did not start"
  fi

  local bs voters="" started=$SECONDS
  bs=$(bootstrap_for "$n")
  for id in $(node_ids "$n"); do voters+="${voters:+,}127.0.0.1:$(cport "$id" "$n")"; done
  rm -rf "$STACK_DIR"/node-* "$STACK_DIR/registry" "$STACK_DIR/cluster.id"
  mkdir -p "$STACK_DIR"
  make_secure
  write_log4j
  for id in $(node_ids "$n"); do write_node_config "$id" "$n" "$voters"; done
  echo "$n" >"$STACK_DIR/mode"
  # registry.mode: apicurio | cmd (the SCHEMA_REGISTRY_CMD hook) | off
  if [[ $reg == off ]]; then echo off; elif [[ -n ${SCHEMA_REGISTRY_CMD:-} ]]; then echo cmd; else echo apicurio; fi \
    >"$STACK_DIR/registry.mode"

  log "formatting $n KRaft node(s)"
  format_nodes "$n" || { do_down; die "kafka.tools.StorageTool format failed (see above)"; }
  log "formatted after $((SECONDS - started))s; starting $n Kafka $KAFKA_VERSION node(s): $bs"
  for id in $(node_ids "$n"); do start_broker "$id" || { do_down; die "could not start Kafka node $id"; }; done
  # The registry (Apicurio with in-memory storage) does not need Kafka: start it
  # alongside so the two JVM start-ups overlap.
  if [[ $reg == on ]]; then start_registry "$bs" || { do_down; die "could not start the schema registry"; }; fi

  wait_brokers "$n" || { do_down; die "Kafka ($n node(s), $bs) did not come up"; }
  log "Kafka answers metadata with $n broker(s), on its secured listeners too, after $((SECONDS - started))s"
  if [[ $reg == on ]]; then
    wait_registry || { do_down; die "schema registry ($(registry_url)) did not come up"; }
    log "schema registry answers at $(registry_url) after $((SECONDS - started))s"
  fi
  print_env "$n"
}

do_down() {
  local pids
  mapfile -t pids < <(our_pids)
  if ((${#pids[@]})); then
    log "stopping pids ${pids[*]}"
    stop_pids "${pids[@]}"
  fi
  mapfile -t pids < <(our_pids)
  ((${#pids[@]} == 0)) || die "could not stop pids ${pids[*]}"
  rm -rf "$STACK_DIR"/node-*/data
  rm -f "$STACK_DIR"/node-*/kafka.pid "$STACK_DIR/registry/registry.pid" "$STACK_DIR/mode" "$STACK_DIR/registry.mode" \
    "$STACK_DIR/registry.url"
}
cmd_down() {
  do_down
  # Check: nothing of ours may survive. Processes are matched by our run folder,
  # which is in every broker's command line.
  local left
  left=$(pgrep -f "kafka\.Kafka $STACK_DIR/|-Dleadscorer\.stack\.dir=$STACK_DIR " || true)
  [[ -z $left ]] || die "processes of this stack still running after down: $left"
  log "stack in $STACK_DIR is down"
}

cmd_status() {
  local n id p ok=0 bs reg
  n=$(mode)
  if [[ -z $n ]]; then echo "no stack in $STACK_DIR"; return 1; fi
  bs=$(bootstrap_for "$n")
  echo "stack dir: $STACK_DIR ($n node(s), cluster id $(cat "$STACK_DIR/cluster.id" 2>/dev/null || echo ?))"
  for id in $(node_ids "$n"); do
    if p=$(pid_of "$STACK_DIR/node-$id/kafka.pid"); then
      local s; s=$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null || echo ?)
      echo "node $id: pid $p state $s broker 127.0.0.1:$(bport "$id" "$n") controller 127.0.0.1:$(cport "$id" "$n")"
      [[ $s == T ]] && ok=1
    else
      echo "node $id: NOT RUNNING (broker 127.0.0.1:$(bport "$id" "$n"))"; ok=1
    fi
  done
  local got; got=$(broker_count "$bs" || true)
  echo "metadata from $bs: ${got:-no answer} broker(s) (expected $n)"
  [[ ${got:-0} == "$n" ]] || ok=1
  if secured_answer "$n" 15 2>"$STACK_DIR/probe.err"; then
    echo "secured listeners: $(for l in "${SECURE_LISTENERS[@]}"; do printf '%s %s; ' "$l" "$(bootstrap_of "$l" "$n")"; done)each answers with $n broker(s)"
  else
    echo "secured listeners: NOT ANSWERING: $(tr '\n' ' ' <"$STACK_DIR/probe.err")"; ok=1
  fi
  reg=$(registry_mode)
  if [[ $reg == off ]]; then
    echo "registry: not started (--no-registry)"
  elif p=$(pid_of "$STACK_DIR/registry/registry.pid"); then
    if registry_ok "$(registry_url)"; then echo "registry: pid $p answers at $(registry_url)"
    else echo "registry: pid $p NOT ANSWERING at $(registry_url)"; ok=1; fi
  else
    echo "registry: NOT RUNNING"; ok=1
  fi
  echo "KAFKA_BROKERS=$bs"
  return $ok
}

cmd_pid() {
  local id=${1:-} f
  [[ -n $id ]] || die "usage: stack.sh pid <node-id|registry>"
  if [[ $id == registry ]]; then f=$STACK_DIR/registry/registry.pid; else f=$STACK_DIR/node-$id/kafka.pid; fi
  pid_of "$f" || die "no running process for '$id' in $STACK_DIR"
}

cmd_start_node() {
  local id=${1:-} n
  [[ -n $id ]] || die "usage: stack.sh start-node <node-id>"
  n=$(mode)
  [[ -n $n ]] || die "no stack in $STACK_DIR (run 'stack.sh up' first)"
  [[ -f $STACK_DIR/node-$id/server.properties && -d $STACK_DIR/node-$id/data ]] || die "node $id is not part of the stack in $STACK_DIR"
  if pid_of "$STACK_DIR/node-$id/kafka.pid" >/dev/null; then
    die "node $id is still running (pid $(pid_of "$STACK_DIR/node-$id/kafka.pid")); kill it first"
  fi
  local l
  for l in PLAINTEXT "${SECURE_LISTENERS[@]}"; do
    port_open "$(lport "$l" "$id" "$n")" && die "port $(lport "$l" "$id" "$n") ($l) is in use by another process"
  done
  local started=$SECONDS
  log "restarting Kafka node $id with its config and data"
  echo "--- restart $(date -u +%FT%TZ) ---" >>"$STACK_DIR/node-$id/kafka.log"
  start_broker "$id" || die "could not start node $id"
  wait_brokers "$n" "$id" || die "node $id did not rejoin"
  log "node $id is back (metadata lists $n brokers) after $((SECONDS - started))s"
}

main() {
  local cmd=${1:-}; shift || true
  mkdir -p "$STACK_DIR"
  # One command at a time per run folder (fd 9 is closed in the children).
  exec 9>"$STACK_DIR/.lock"
  flock -w "$((TIMEOUT + 60))" 9 || die "another stack.sh holds $STACK_DIR/.lock"
  case $cmd in
    up) cmd_up "$@" ;;
    down) cmd_down ;;
    status) cmd_status ;;
    pid) cmd_pid "$@" ;;
    start-node) cmd_start_node "$@" ;;
    fetch) cmd_fetch ;;
    *) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" >&2; exit 2 ;;
  esac
}
main "$@"
