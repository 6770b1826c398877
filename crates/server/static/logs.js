// filled in by the logs page
