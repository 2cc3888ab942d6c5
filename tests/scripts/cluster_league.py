"""Driver-only proof: a two-node Ray cluster on one machine, remote workers on the second node.

    python cluster_league.py on|off|nowhere
    # on, off: the shim on the worker processes or not (the driver: on)
    # nowhere: RLlib alone, the shim off in the driver and on the workers

Prints one JSON line: verify() verdict, where the workers ran, which shim modules they imported,
and how many broadcasts the driver made.
"""

from __future__ import annotations

import json
import os
import sys

import ray
import ray.cloudpickle
from ray.cluster_utils import Cluster

import rllib_addpolicy_fix as fix
from rllib_addpolicy_fix import _compat
from rllib_addpolicy_fix.syncing import tracking as _tracking
from rllib_addpolicy_fix.syncing import transport as _transport
from rllib_addpolicy_fix.tools import game

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import helpers  # noqa: E402

workers_mode = sys.argv[1]
cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
cluster.add_node(num_cpus=2, resources={"second_node": 8})
ray.init(
    address=cluster.address,
    log_to_driver=False,
    configure_logging=False,
    runtime_env={"env_vars": {"RLLIB_ADDPOLICY_FIX": "1" if workers_mode == "on" else "0"}},
)
if workers_mode == "nowhere":
    fix.uninstall()
# Nothing of this package needs to be importable where the workers run.
for module in (helpers, game):
    ray.cloudpickle.register_pickle_by_value(module)
try:
    algo = helpers.ppo_config(
        custom_resources_per_worker={"second_node": 1},
        callbacks=helpers.CountsCreatedPolicies,
        policy_map_capacity=2,
    ).build()
    algo.train()
    group = _compat.training_group(algo)
    _transport.foreach_remote(group, helpers.count_rebuilds)
    # Past the policy cache of 2: each add stashes one policy on every worker, and rebuilds
    # none from the stash, with or without the shim on the workers.
    for snapshot in ("main_v1", "main_v2", "main_v3"):
        helpers.copy_weights(algo, snapshot)
        if workers_mode != "nowhere":  # RLlib alone has nothing like it
            fix.sync(algo)
    adds = [counts for _, counts in _transport.foreach_remote(group, helpers.counters)]
    for _ in range(2):
        algo.train()
    algo.get_policy("main_v1").set_weights(algo.get_policy("main").get_weights())
    algo.train()
    report = fix.verify(algo)
    facts = [f for _, f in _transport.foreach_remote(group, helpers.remote_facts)]
    lifetime = _tracking.record_for(group).lifetime
    print(
        json.dumps(
            {
                "consistent": report.consistent,
                "max_abs_diff": report.max_abs_diff(),
                "driver_node": ray.get_runtime_context().get_node_id(),
                "worker_nodes": [f["node"] for f in facts],
                "worker_shim_modules": [f["shim_modules"] for f in facts],
                "worker_shim_active": [f["shim_active"] for f in facts],
                "broadcasts": lifetime.broadcasts,
                "policies_broadcast": lifetime.policies_broadcast,
                "created_in_adds": [counts["created"] for counts in adds],
                "rebuilt_in_adds": [counts["rebuilt"] for counts in adds],
            }
        )
    )
    algo.stop()
finally:
    ray.shutdown()
    cluster.shutdown()
