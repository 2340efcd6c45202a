"""The shared runtime every domain agent runs on (see stream/runtime/domain.py for the interface)."""
