"""Training one model on many workers, as the notes' chapter on distributed learning
describes it (``parallel: {mode, workers}`` in a config; ``dl train --backend dask``).

- ``source``: what the Solver asks of whoever computes a step (``GradientSource``), and
  the model in this process (``LocalSource``).
- ``dask_sync``: map-reduce gradients. Each Dask worker holds a shard of the training
  set; every step it computes the loss and gradient of its part of the global batch at
  the current parameters, the driver sums them and takes one optimizer step: the
  numbers of one process, whatever the number of workers.
- ``shard_worker``: the worker's side of it, a Dask actor holding a shard and a replica
  of the model; ``batchnorm_sync``: batchnorm's statistics joined over the parts.
- ``parameter_server`` and ``async_training``: asynchronous SGD (Downpour). Workers pull
  the parameters, compute a gradient on their next batch and push it to a server (a
  Dask actor) that applies each as it arrives, on parameters that may be stale; the
  order of the updates is recorded, and ``replay`` recomputes a run from that record.
- ``cluster``: a LocalCluster of K workers, or an existing cluster.

Only ``source`` is imported by the Solver; the others work with a Dask client and its
actors (the ``dask`` extra) and are imported when a run asks for them.
"""
