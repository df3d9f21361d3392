<?php

declare(strict_types=1);

namespace Bgjob;

/** Code 0: the daemon could not be reached, or the connection broke. */
class ConnectionFailed extends BgjobException
{
}
