<?php

declare(strict_types=1);

namespace Bgjob;

/** `500`: the module failed (non-zero exit, killed, too much output, cannot start) or answered a `500:` itself; also the daemon's own `500:` errors, such as `Unknown queue request`. */
class ModuleFailed extends BgjobException
{
}
