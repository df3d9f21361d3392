<?php

declare(strict_types=1);

namespace Bgjob;

/** `413`: the request is over the daemon's `max_request_bytes`. */
class TooLarge extends BgjobException
{
}
