"""Rithmic (R|Protocol over WebSocket): codec and a protocol-faithful simulator."""
