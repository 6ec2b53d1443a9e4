"""The imperative shell: it moves bytes in and out of ``models``. Rooms by role: ``settings``,
``worker/`` (the runtime), ``lab/`` (tools the worker never imports), ``cli/`` (the command)."""
