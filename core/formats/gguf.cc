#include "core/formats/gguf.h"
