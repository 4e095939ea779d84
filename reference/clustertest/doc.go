// Package clustertest holds the end-to-end tests of the reference server
// running as a cluster: two or more nodes sharing one real redis-server
// (started by the tests on a free loopback port, see redistest) through
// redisstore, its change feed and the Socket.IO Redis adapter. They cover
// cross-node joins and broadcasts, one message order on every node, the
// removal of a killed node's users, a Redis restart, and the chatspec
// verify and load commands against two nodes. The package has no API.
package clustertest
