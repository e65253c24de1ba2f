/* Compile-time checks of the contract's layout. The header is the whole API. */
#include "occur_plugin.h"

_Static_assert(offsetof(occur_plugin_descriptor, struct_size) == 0, "struct_size first");
_Static_assert(offsetof(occur_event, struct_size) == 0, "struct_size first");
_Static_assert(offsetof(occur_frame, struct_size) == 0, "struct_size first");
_Static_assert(offsetof(occur_face, struct_size) == 0, "struct_size first");
_Static_assert(offsetof(occur_result, struct_size) == 0, "struct_size first");
_Static_assert(offsetof(occur_host_api, struct_size) == 0, "struct_size first");
_Static_assert(sizeof(occur_box) == 16, "four floats");
