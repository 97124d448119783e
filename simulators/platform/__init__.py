"""The reference case platform: an HTTP stand-in for the city's grid case platform.

It receives ``GridCase`` and ``CaseUpdate`` JSON on its native API and Open311
GeoReport v2 service requests on ``/open311/v2``, walks each case through the
workflow (立案 → 派遣 → 处置 → 核查 → 结案; some voided, deferred, sent back or late),
computes the evaluation indicators, can push signed status changes to a webhook, and
can inject faults (503s, slowness, lost or delayed responses, outages) so the bridge's
retry and idempotency can be proven against a real socket.
"""

from simulators.platform.config import (
    FaultConfig,
    Open311ServiceConfig,
    Open311SurfaceConfig,
    PlatformConfig,
    WebhookPushConfig,
    WorkflowConfig,
)
from simulators.platform.server import PlatformServer, run

__all__ = [
    "FaultConfig",
    "Open311ServiceConfig",
    "Open311SurfaceConfig",
    "PlatformConfig",
    "PlatformServer",
    "WebhookPushConfig",
    "WorkflowConfig",
    "run",
]
