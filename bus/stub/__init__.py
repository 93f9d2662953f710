"""A stub broker for unit tests: an in-memory NATS server with the JetStream the bus uses.

Test an agent, or your own, with no nats-server: connect buses to a :class:`StubBroker`, start
the agents on them, publish events, ``await broker.run_until_idle()``, then look at what was
emitted (``broker.events(...)``), dead-lettered (``broker.dead_letters(...)``) or stored in a
bucket (``broker.kv()``). docs/architecture.md ("Testing without a server") shows a whole test.

The broker answers nats-py's own client: the bus's publisher, consumers, KV, stream reads and
request/reply run unchanged on it. Modelled, as the server does it:

- streams: subjects, sequences, de-duplication by ``Nats-Msg-Id`` within the duplicate window,
  expected stream and expected last sequence per subject (KV revisions), ``max_msg_size``,
  ``max_bytes`` with discard-new (a "store full" error), per-subject history (KV);
- durable pull consumers: pull requests (batch, expiry with a 408 status), explicit acks (ack,
  nak with delay, in-progress, term), redelivery after ``ack_wait``, ``max_deliver``,
  ``max_ack_pending``, filters; consumer info with delivered and ack-floor sequences and their
  last activity;
- core NATS: subscriptions, queue groups (one member per message), request/reply, "no
  responders", ``max_payload``.

Not modelled: push consumers (so KV watchers; listing a bucket's keys is answered directly),
ordered consumers, flow control and heartbeats, ``max_age``/``max_msgs`` limits and discard-old,
stream purge/delete and message deletion, mirrors and sources, replicas, clustering and leader
elections, lost connections and reconnects, accounts and permissions (the NATS users of
deploy/nats are not enforced: tests/test_nats_permissions.py checks them on a real server), and
the NATS micro services API. The real-server suites remain the proof of those.
"""

from bus.clock import ManualClock
from bus.stub.broker import StubBroker

__all__ = ["ManualClock", "StubBroker"]
