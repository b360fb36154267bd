// Boost.URL, compiled once (Debian ships it without a library); move to a shared module if another needs it.
#include <boost/url/src.hpp>
