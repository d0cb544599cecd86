# The README's two commands, `make run` and `make test`, plus `make lint` and
# `make bench`. deploy/setup.sh does the setup (.venv, PostgreSQL, RabbitMQ,
# the database, migrations); it is quiet when there is nothing to do.
#
# Settings: deploy/demo/hub.env, for what the environment leaves unset.
#   make test PYTEST_ARGS='-x tests/unit'
#   make bench BENCH_ARGS='--help'

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.ONESHELL:
.DEFAULT_GOAL := run

TOP := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
PYTEST_ARGS ?=
BENCH_ARGS ?=

# Export deploy/demo/hub.env's settings that the environment does not set.
demo_env = defaults=$$(deploy/setup.sh --print-env) && eval "$$defaults"

.PHONY: run test lint bench cluster cluster-stop

run:
	@cd "$(TOP)"
	$(demo_env)
	deploy/setup.sh
	addr=$${HUB_INGRESS_ADDR:-127.0.0.1:8080}
	host=$${addr%:*} port=$${addr##*:}
	case $$host in ""|0.0.0.0|"[::]"|"::") host=127.0.0.1 ;; esac
	url=http://$$host:$$port/connector/api/2011-11/user
	echo
	echo "The demo: the hub's ingress on $$addr, fake partners clubos (:9102) and legacy (:9101)."
	echo "It posts a staff member, a lead source and a prospect, and shows what each partner"
	echo "received. Ctrl-C stops it. Save the demo prospect again yourself with:"
	echo
	echo "  curl -sS -H 'Authorization: Bearer demo-intouch-key' -H 'Content-Type: application/xml' \\"
	echo "       --data-binary @deploy/demo/prospect.xml $$url"
	echo
	exec .venv/bin/hub demo

# The tests use their own namespaces on the servers HUB_TEST_DATABASE_URL and
# HUB_TEST_AMQP_URL name (default: the demo ones); setup makes sure those answer.
test:
	@cd "$(TOP)"
	(
	  $(demo_env)
	  [[ -z $${HUB_TEST_DATABASE_URL:-} ]] || export HUB_DATABASE_URL=$$HUB_TEST_DATABASE_URL
	  [[ -z $${HUB_TEST_AMQP_URL:-} ]] || export HUB_AMQP_URL=$$HUB_TEST_AMQP_URL
	  exec deploy/setup.sh --browser
	)
	# In HUB_TEST_WORKERS processes (3: most of the suite's time is waiting); then, in
	# one process and alone, the tests that kill, block or stop brokers (the local
	# cluster's, and the machine's: nothing else may use it meanwhile, and node restarts
	# keep their timing). Exit 5 (none selected, e.g. by PYTEST_ARGS) is fine there.
	.venv/bin/pytest -n "$${HUB_TEST_WORKERS:-3}" --dist loadgroup -m "not broker_restart and not cluster" $(PYTEST_ARGS)
	.venv/bin/pytest -m "broker_restart or cluster" $(PYTEST_ARGS) || [[ $$? == 5 ]]

lint:
	@cd "$(TOP)"
	deploy/setup.sh --venv
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy

bench:
	@cd "$(TOP)"
	$(demo_env)
	deploy/setup.sh
	exec .venv/bin/hub bench ingress $(BENCH_ARGS)

# A local three-node RabbitMQ cluster beside the machine's node (deploy/cluster/README.md).
cluster:
	@cd "$(TOP)"
	deploy/cluster/cluster.sh start

cluster-stop:
	@cd "$(TOP)"
	deploy/cluster/cluster.sh stop
