<?php

declare(strict_types=1);

namespace Bgjob;

/** `410`: the job was cancelled while its fetch waited for it. */
class Cancelled extends BgjobException
{
}
