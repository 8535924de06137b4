#include "core/quant/quant.h"
