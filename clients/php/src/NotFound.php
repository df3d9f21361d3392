<?php

declare(strict_types=1);

namespace Bgjob;

/** `404`: no such job here (never added, fetched, expired, cancelled, or added on another listener), or a module's own `404:` answer. */
class NotFound extends BgjobException
{
}
