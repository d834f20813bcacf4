"""pytester runs real pytest sessions for the plugin tests."""

pytest_plugins = ["pytester"]
