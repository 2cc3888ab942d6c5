"""A two-player repeated rock-paper-scissors game for the self-play demo and the tests.

Shipped with the package so the demo and the tests need no environment of their own and no
download. Each player observes the opponent's previous move (one-hot, plus a "no move yet" slot),
so a policy's action distribution really depends on its weights.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from ray.rllib.env.multi_agent_env import MultiAgentEnv

PLAYERS = ("player_0", "player_1")
NUM_MOVES = 3
OBSERVATION_SPACE = gym.spaces.Box(0.0, 1.0, (NUM_MOVES + 1,), np.float32)
ACTION_SPACE: gym.spaces.Discrete[Any] = gym.spaces.Discrete(NUM_MOVES)
EPISODE_LENGTH = 10


def _one_hot(move: int | None) -> np.ndarray:
    obs = np.zeros(NUM_MOVES + 1, np.float32)
    obs[NUM_MOVES if move is None else move] = 1.0
    return obs


class RockPaperScissors(MultiAgentEnv):  # type: ignore[misc]
    """Both players move at once; +1 to the winner, -1 to the loser, 0 on a draw."""

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.agents = self.possible_agents = list(PLAYERS)
        self._agent_ids = set(PLAYERS)
        self.observation_space = OBSERVATION_SPACE
        self.action_space = ACTION_SPACE
        self.observation_spaces = {p: OBSERVATION_SPACE for p in PLAYERS}
        self.action_spaces = {p: ACTION_SPACE for p in PLAYERS}
        self._turn = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        self._turn = 0
        return {p: _one_hot(None) for p in PLAYERS}, {}

    def step(self, action_dict: dict[str, int]) -> Any:
        self._turn += 1
        # Older RLlib env checkers step with a partial action dict: a missing move is rock.
        a0, a1 = (int(action_dict.get(player, 0)) for player in PLAYERS)
        outcome = (a0 - a1) % NUM_MOVES  # 1: player_0 wins, 2: player_1 wins, 0: draw
        r0 = {0: 0.0, 1: 1.0, 2: -1.0}[outcome]
        obs = {PLAYERS[0]: _one_hot(a1), PLAYERS[1]: _one_hot(a0)}
        rewards = {PLAYERS[0]: r0, PLAYERS[1]: -r0}
        done = self._turn >= EPISODE_LENGTH
        terminateds = {p: done for p in PLAYERS} | {"__all__": done}
        truncateds = {p: False for p in PLAYERS} | {"__all__": False}
        return obs, rewards, terminateds, truncateds, {}


def league_mapping(agent_id: str, *args: Any, worker: Any = None, **kwargs: Any) -> str:
    """player_0 is the trained "main"; player_1 faces a random snapshot ("main_v*") the worker
    holds, or "main" while there is none. Reading the league from the worker means snapshots
    join without updating the mapping function."""
    if agent_id == PLAYERS[0]:
        return "main"
    policy_map = getattr(worker, "policy_map", None)
    league = [
        pid
        for pid in (policy_map.keys() if policy_map is not None else ())
        if str(pid).startswith("main_v")
    ]
    if not league:
        return "main"
    import random

    return str(random.choice(league))
