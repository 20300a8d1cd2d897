"""pifo_sched: programmable packet scheduling on PIFO queues.

A scheduler is written once against the hooks of :mod:`.scheduler` (enqueue picks the
queue and rank, dequeue picks the queue to serve, an optional timer releases delayed
elements), checked on the discrete-event runtime in :mod:`.sim`, and run on real
packets by the tc egress data path in :mod:`.kernel`.
"""
