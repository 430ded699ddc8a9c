#!/usr/bin/env bash
#! Installs the Apache Kafka broker's jars from Maven Central once and reuses them afterwards.
# The version is scripts/kafka/pom.xml's kafka.version (the apache/kafka images in
# docker/ and k8s/ carry the same). Maven resolves kafka_2.13 with its runtime
# dependencies and a log4j binding into ~/.m2 and copies them into a per-user
# cache shared by every clone; this script prints that folder (the classpath's
# jars) when it is already there. Needs Java 17 and Maven.
set -euo pipefail
cd "$(dirname "$0")/.."

pom=scripts/kafka/pom.xml
version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom")
key=$(sha256sum "$pom" | cut -c1-12)
root="${KAFKA_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/eshop-tracing/kafka-${version}-${key}}"
libs="$root/libs"

if [ -f "$libs/kafka_2.13-${version}.jar" ]; then
  echo "$libs"
  exit 0
fi

for tool in java mvn; do
  command -v "$tool" >/dev/null || { echo "install-kafka.sh: $tool not found (Apache Kafka needs Java 17 and Maven)" >&2; exit 1; }
done
echo "installing Apache Kafka $version into $libs (Maven Central, about a minute, once)" >&2
rm -rf "$libs.tmp"
mvn --batch-mode --quiet -f "$pom" dependency:copy-dependencies \
  -DincludeScope=runtime -DoutputDirectory="$libs.tmp" >&2
rm -rf "$libs"
mv "$libs.tmp" "$libs"
echo "$libs"
