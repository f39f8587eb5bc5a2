// ksr_request_route is not a function
var ksr_request_route = 5;
