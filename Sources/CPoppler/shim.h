// Umbrella header of the CPoppler system library module (poppler-glib: PDF structure and text layer).
#include <poppler.h>
