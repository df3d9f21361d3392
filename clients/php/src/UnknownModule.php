<?php

declare(strict_types=1);

namespace Bgjob;

/** `400`: no such module (or an empty request). */
class UnknownModule extends BgjobException
{
}
