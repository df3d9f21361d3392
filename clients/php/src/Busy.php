<?php

declare(strict_types=1);

namespace Bgjob;

/** `503`: the waiting line or a connection limit is full, the journal cannot be written (`Journal write failed`), or the daemon is shutting down; try again later. */
class Busy extends BgjobException
{
}
