"""A gRPC health client written with grpcio (gRPC's own C-core client), for
tests/grpcio.rs: a peer connkit's code had no hand in.

    python3 health_client.py TARGET [AUTHORITY]

TARGET is a grpcio target: `unix:/path/to/x.sock` or `127.0.0.1:PORT`.
AUTHORITY, if given, replaces grpcio's default `:authority` (see below).
One line per event goes to stdout, flushed at once, because the Rust test
acts on them (it sends SIGTERM after `watch SERVING`):

    check SERVING
    check-deadline SERVING
    check-unknown NOT_FOUND
    watch SERVING
    watch NOT_SERVING
    watch ended: OK
    done

After `watch ended` the channel stays open until stdin closes, as a load
balancer's would: the server's drain must end that idle connection itself
(GOAWAY) rather than wait for the client to go.
"""

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def say(line):
    print(line, flush=True)


def status_name(response):
    return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)


def main():
    target = sys.argv[1]
    # grpcio honours http_proxy/grpc_proxy for TCP targets; the server is
    # local, so no proxy a CI machine has set may stand in between.
    options = [("grpc.enable_http_proxy", 0)]
    if len(sys.argv) > 2:
        # Over unix: grpc-core (since 1.57) sends the percent-encoded socket
        # path as :authority, which hyper's h2 refuses (RST_STREAM
        # PROTOCOL_ERROR); grpc-go and older grpc-core send `localhost`.
        options.append(("grpc.default_authority", sys.argv[2]))
    channel = grpc.insecure_channel(target, options=options)
    health = health_pb2_grpc.HealthStub(channel)
    whole = health_pb2.HealthCheckRequest(service="")

    # wait_for_ready: the first call may race the channel's first connect.
    try:
        say("check " + status_name(health.Check(whole, wait_for_ready=True)))
    except grpc.RpcError as e:
        say("check failed: " + e.code().name + " " + repr(e.details()))
        sys.exit(1)

    # `timeout=` sends a grpc-timeout header; the server must accept it.
    say("check-deadline " + status_name(health.Check(whole, timeout=5)))

    # grpc.health.v1 answers NOT_FOUND for a service it has never heard of.
    try:
        response = health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"))
        say("check-unknown answered " + status_name(response))
    except grpc.RpcError as e:
        say("check-unknown " + e.code().name)

    # No deadline on the Watch: it must end because the server ends it.
    watch = health.Watch(whole)
    try:
        for response in watch:
            say("watch " + status_name(response))
        say("watch ended: " + watch.code().name)
    except grpc.RpcError as e:
        say("watch ended: " + e.code().name + " " + repr(e.details()))

    sys.stdin.read()  # hold the channel open until the test is done
    channel.close()
    say("done")


if __name__ == "__main__":
    main()
