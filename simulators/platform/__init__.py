"""The reference case platform: an HTTP stand-in for the city's grid case platform.

It receives ``GridCase`` and ``CaseUpdate`` JSON, walks each case through the
workflow (立案 → 派遣 → 处置 → 核查 → 结案), computes the evaluation indicators
and can inject faults (503s, slowness, lost responses, outages) so the bridge's
retry and idempotency can be proven against a real socket.
"""

from simulators.platform.config import FaultConfig, PlatformConfig, WorkflowConfig
from simulators.platform.server import PlatformServer, run

__all__ = ["FaultConfig", "PlatformConfig", "PlatformServer", "WorkflowConfig", "run"]
