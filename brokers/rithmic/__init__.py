"""Rithmic (R|Protocol over WebSocket): codec, plant transport, adapter and a protocol-faithful simulator."""
