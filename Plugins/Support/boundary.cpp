// Header-only: include/occur_plugin_boundary.hpp.
