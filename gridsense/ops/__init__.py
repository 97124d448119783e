"""The duty officer's live operations page, its feed and the operator commands.

``create_ops_app(source)`` (``gridsense.ops.app``) builds the FastAPI app over an
``OpsSource`` (``gridsense.ops.source``): a running ``App`` or a store on disk, read only.
"""
