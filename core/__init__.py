"""The domain core: records, copy config, ids, scaling, schemas, topics, settings, metrics.

It imports no stage (``agents``, ``web``, ``tables``, ``storage``) and no wiring (``app``);
every stage imports it. Below it sit only ``brokers`` (the adapter contract and its models)
and ``common`` (leaf utilities).
"""
