"""InitProducerId (API key 22): a producer id and epoch for an idempotent producer (KIP-98).

Versions 0-5 (v3+ carry the producer's current id and epoch, KIP-360; v6's two-phase commit
fields belong to transactions). Kafka's rules kept here:

- No transactional id: a fresh producer id, epoch 0, every time. Kafka does the same even when
  a v3+ request names the producer's current id and epoch: an idempotent producer bumps its
  epoch itself and asks the broker only for a new id (KIP-360).
- Transactional id "": INVALID_REQUEST, as Kafka's transaction coordinator answers.
- Any other transactional id: transactions are not implemented, so
  TRANSACTIONAL_ID_AUTHORIZATION_FAILED (53), as Produce answers transactional batches. Kafka
  answers it to a principal that may not use the id; kafka-python and aiokafka treat it as
  fatal and raise it to the application at once, where COORDINATOR_NOT_AVAILABLE (retriable)
  would have them look up a coordinator and retry until their timeout.
- The ids come from `BrokerServices.allocate_producer_id` (unique in the cluster and across
  restarts); when that fails, COORDINATOR_LOAD_IN_PROGRESS (retriable), as Kafka answers while
  its producer id manager waits for a block.
"""

from __future__ import annotations

import logging
from typing import Any

from .context import RequestContext
from .errors import ErrorCode
from .responses import NO_THROTTLE, response_module

API_KEY = 22
MIN_VERSION = 0
MAX_VERSION = 5

_log = logging.getLogger(__name__)


async def handle(ctx: RequestContext, request: Any) -> Any:
    version = ctx.api_version
    transactional_id = request.transactional_id
    if transactional_id is not None:
        if transactional_id == "":
            return error_response(version, request, ErrorCode.invalid_request)
        return error_response(version, request, ErrorCode.transactional_id_authorization_failed)
    try:
        producer_id = await ctx.services.allocate_producer_id()
    except Exception:
        _log.exception("cannot allocate a producer id")
        return error_response(version, request, ErrorCode.coordinator_load_in_progress)
    return _response(version, ErrorCode.none, producer_id, 0)


def _response(version: int, error_code: int, producer_id: int, producer_epoch: int) -> Any:
    return response_module(API_KEY, version).InitProducerIdResponse(
        throttle_time=NO_THROTTLE,
        error_code=ErrorCode(error_code),
        producer_id=producer_id,
        producer_epoch=producer_epoch,
    )


def error_response(version: int, request: Any, error_code: int) -> Any:
    return _response(version, error_code, -1, -1)
