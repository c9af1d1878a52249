// Nagle's algorithm off on the MQTT connections.
//
// MQTT is request/response on small packets: with Nagle on, a PUBLISH written while the previous
// one is unacknowledged waits for the peer's delayed ACK (up to 40 ms on Linux), which showed as
// a 25-40 ms tail on about 1% of results at 200 messages/s. Paho C sets no TCP_NODELAY and has
// no socket hook, so after each connect the link turns it on for the process's connected TCP
// sockets (the MQTT links; an HTTP connection of the Prometheus endpoint gains nothing but loses
// nothing either).
#pragma once

namespace edgeinfer::agent {

// Sets TCP_NODELAY on every connected TCP socket of this process that does not have it yet.
// Returns how many it changed. Safe against sockets closed concurrently (setsockopt then fails).
int SetNoDelayOnConnectedTcpSockets();

}  // namespace edgeinfer::agent
